import type { TestContext } from 'node:test'
import { buildApp, type App } from '../../src/http/app.js'
import { TokenPool } from '../../src/pool/pool.js'
import type { ExhaustionPolicy, PoolSettings } from '../../src/domain/types.js'
import type { Db } from '../../src/store/db.js'
import { testDb, type Backend } from './db.js'

export interface Harness {
  app: App
  pool: TokenPool
  db: Db
}

/** The default pool's settings in the words of the environment (POOL_SIZE → poolSize). */
export interface DefaultPoolOptions {
  poolSize?: number
  leaseTtlSeconds?: number
  leaseMaxSeconds?: number
  usageWindowHours?: number
  onExhausted?: ExhaustionPolicy
  cooldownMaxSeconds?: number
  userQuota?: number | null
}

export function defaultPool (o: DefaultPoolOptions): Partial<PoolSettings> {
  return {
    size: o.poolSize ?? 10,
    lease_ttl_seconds: o.leaseTtlSeconds ?? 120,
    ...(o.leaseMaxSeconds === undefined ? {} : { lease_max_seconds: o.leaseMaxSeconds }),
    usage_window_hours: o.usageWindowHours ?? 24,
    on_exhausted: o.onExhausted ?? 'evict_oldest',
    ...(o.cooldownMaxSeconds === undefined ? {} : { cooldown_max_seconds: o.cooldownMaxSeconds }),
    ...(o.userQuota === undefined ? {} : { user_quota: o.userQuota }),
  }
}

/** A started pool on a fresh schema and an app around it, closed when the test ends. No sweep timer: tests drive time. */
export async function build (t: TestContext, backend: Backend, opts: DefaultPoolOptions & { adminToken?: string } = {}): Promise<Harness> {
  const db = await testDb(t, backend)
  const pool = new TokenPool(db, { defaultPool: defaultPool(opts), sweepIntervalMs: 0 })
  await pool.start()
  const app = await buildApp({ pool, adminToken: opts.adminToken })
  t.after(async () => {
    await app.close()
    await pool.stop()
  })
  return { app, pool, db }
}

/**
 * Moves the pool's clock forward by moving every stored timestamp back, so the
 * database's now() stays the one clock. Usages shift oldest first: shifting a later
 * one first could make it overlap an earlier one, which the constraint forbids.
 */
export async function travel (db: Db, seconds: number): Promise<void> {
  await db.query(`DO $$
    DECLARE d interval := make_interval(secs => ${Number(seconds)}); r record;
    BEGIN
      FOR r IN SELECT id FROM usages ORDER BY started_at LOOP
        UPDATE usages SET started_at = started_at - d, expires_at = expires_at - d, released_at = released_at - d,
                          renewable_until = renewable_until - d WHERE id = r.id;
      END LOOP;
      UPDATE tokens SET lease_started_at = lease_started_at - d, lease_expires_at = lease_expires_at - d,
                        counted_window = counted_window - d, cooling_until = cooling_until - d;
      UPDATE pools SET window_started_at = window_started_at - d;
      UPDATE user_window_leases SET window_started_at = window_started_at - d;
      -- As a real change would, it tells every node's read model to read the pools again.
      INSERT INTO pool_events (type, pool, body) SELECT 'refresh', name, '{}' FROM pools WHERE NOT deleted;
    END $$`)
}

export const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })

/** Rows of usages that overlap another usage of the same token (must always be none). */
export async function overlaps (db: Db): Promise<unknown[]> {
  return await db.query(`
    SELECT a.id, b.id AS other FROM usages a JOIN usages b
      ON a.token_id = b.token_id AND a.id < b.id
     AND tstzrange(a.started_at, coalesce(a.released_at, a.expires_at), '[)')
      && tstzrange(b.started_at, coalesce(b.released_at, b.expires_at), '[)')`)
}
