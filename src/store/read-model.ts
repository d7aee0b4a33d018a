import type { PoolRow, TokenRow } from '../pool/model/pool-state.js'
import type { Db } from './db.js'
import type { Position } from './events.js'

const ms = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`

const TOKEN_COLUMNS = `t.id, t.pool, t.position, t.label, t.retired, t.disabled, t.disabled_reason,
  ${ms('t.cooling_until')} AS cooling_until, t.lease_id, t.lease_user_id AS user_id,
  ${ms('t.lease_started_at')} AS started_at, ${ms('t.lease_expires_at')} AS expires_at,
  ${ms('coalesce(u.renewable_until, u.expires_at)')} AS renewable_until,
  t.usage_count, ${ms('t.counted_window')} AS counted_window`

const POOL_COLUMNS = `p.name, p.size, p.lease_ttl_seconds, p.lease_max_seconds, p.usage_window_hours, p.on_exhausted,
  p.max_wait_seconds, p.cooldown_max_seconds, p.user_quota, ${ms('p.window_started_at')} AS window_started_at`

/** What changed after a position of the log, read in one statement (one snapshot). */
export interface Changes {
  /** the database's now() for this snapshot, epoch ms */
  now: number
  /** below this transaction id every event is settled: visible, or never */
  xmin: string
  events: Array<{ id: number, xid: string, type: string, pool: string, token_id: string | null }>
  /** the current rows of every token those events name */
  tokens: TokenRow[]
  /** users waiting per pool now */
  waiting: Record<string, number>
}

/**
 * The events after `after` (but those in `skip`, already applied), at most `limit`, with
 * the rows of the tokens they name as they are now, the snapshot's horizon and the queues'
 * lengths: one round trip per batch of reads.
 */
export async function changesAfter (db: Db, after: Position, skip: number[], limit: number): Promise<Changes> {
  const [row] = await db.query<Changes>(
    `WITH s AS MATERIALIZED (SELECT now() AS now, pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
          ev AS MATERIALIZED (
            SELECT e.id, e.xid, e.type, e.pool, e.token_id FROM pool_events e
             WHERE (e.xid, e.id) > ($1::xid8, $2::bigint) AND NOT (e.id = ANY($3::bigint[]))
             ORDER BY e.xid, e.id LIMIT $4)
     SELECT ${ms('s.now')} AS now, s.xmin::text AS xmin,
            (SELECT coalesce(json_agg(json_build_object('id', ev.id, 'xid', ev.xid::text, 'type', ev.type, 'pool', ev.pool,
                                                        'token_id', ev.token_id) ORDER BY ev.xid, ev.id), '[]') FROM ev) AS events,
            (SELECT coalesce(json_agg(r), '[]') FROM (
               SELECT ${TOKEN_COLUMNS} FROM tokens t LEFT JOIN usages u ON u.id = t.lease_id
                WHERE t.id IN (SELECT ev.token_id FROM ev)) r) AS tokens,
            (SELECT coalesce(json_object_agg(w.pool, w.n), '{}') FROM (
               SELECT w.pool, count(DISTINCT w.user_id)::int AS n FROM waiters w
                WHERE w.alive_until > s.now AND w.granted_token IS NULL GROUP BY w.pool) w) AS waiting
       FROM s`,
    [after.xid, after.id, skip, limit]
  )
  return row!
}

/** The horizon now: every event of a transaction below it is visible (or never will be). */
export async function horizon (db: Db): Promise<string> {
  const [row] = await db.query<{ xmin: string }>('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin')
  return row!.xmin
}

/** Every pool not deleted (or one), with its settings. */
export async function poolRows (db: Db, name?: string): Promise<PoolRow[]> {
  return await db.query<PoolRow>(
    `SELECT ${POOL_COLUMNS} FROM pools p WHERE NOT p.deleted AND ($1::text IS NULL OR p.name = $1::text)`, [name ?? null])
}

/** A page of a pool's tokens after `after` in creation order; retired ones only while a lease may be running. */
export async function tokenRows (db: Db, pool: string, after: number, limit: number): Promise<TokenRow[]> {
  return await db.query<TokenRow>(
    `SELECT ${TOKEN_COLUMNS} FROM tokens t LEFT JOIN usages u ON u.id = t.lease_id
      WHERE t.pool = $1 AND t.position > $2 AND (NOT t.retired OR t.lease_expires_at IS NOT NULL)
      ORDER BY t.position LIMIT $3`,
    [pool, after, limit]
  )
}

/** The database's now(), epoch ms. */
export async function dbNow (db: Db): Promise<number> {
  const [row] = await db.query<{ now: number }>(`SELECT ${ms('now()')} AS now`)
  return row!.now
}
