import type { TestContext } from 'node:test'
import { buildApp, type App } from '../../src/http/app.js'
import { TokenPool, type PoolOptions } from '../../src/pool/pool.js'
import type { Db } from '../../src/store/db.js'
import { testDb, type Backend } from './db.js'

export interface Harness {
  app: App
  pool: TokenPool
  db: Db
}

/** A started pool on a fresh schema and an app around it, closed when the test ends. No sweep timer: tests drive time. */
export async function build (t: TestContext, backend: Backend, opts: Partial<PoolOptions> & { adminToken?: string } = {}): Promise<Harness> {
  const db = await testDb(t, backend)
  const pool = new TokenPool(db, {
    poolSize: 10,
    leaseTtlSeconds: 120,
    usageWindowHours: 24,
    onExhausted: 'evict_oldest',
    sweepIntervalMs: 0,
    ...opts,
  })
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
        UPDATE usages SET started_at = started_at - d, expires_at = expires_at - d, released_at = released_at - d WHERE id = r.id;
      END LOOP;
      UPDATE tokens SET lease_started_at = lease_started_at - d, lease_expires_at = lease_expires_at - d, counted_window = counted_window - d;
      UPDATE pool_state SET window_started_at = window_started_at - d;
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
