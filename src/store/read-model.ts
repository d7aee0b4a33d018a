import type { Id } from '../domain/ids.js'
import type { PoolRow, TokenRow } from '../pool/model/pool-state.js'
import type { Db } from './db.js'
import type { Position } from './events.js'
import { POOL_COLUMNS } from './pools.js'

/** What changed after a position of the log, read in one snapshot (tp_catch_up). */
export interface Changes {
  /** the database's now() for this snapshot, epoch ms */
  at_ms: number
  /** below this transaction id every event is settled: visible, or never */
  horizon: string
  events: Array<{ id: number, xid: string, type: string, pool: string, token_id: Id | null }>
  /** the current rows of every token those events name */
  tokens: TokenRow[]
  /** users waiting per pool now */
  waiting: Record<string, number>
  /** whether this node's mark is still there: crash recovery empties that (unlogged) table */
  marked: boolean
}

/**
 * The events after `after` (but those in `skip`, already applied), at most `limit`, with
 * the rows of the tokens they name as they are now, the snapshot's horizon and the queues'
 * lengths: one round trip per batch of reads.
 */
export async function changesAfter (db: Db, node: string, after: Position, skip: number[], limit: number): Promise<Changes> {
  const [row] = await db.query<Changes>(
    `SELECT c.*, EXISTS (SELECT 1 FROM read_model_marks m WHERE m.node = $5::uuid) AS marked
       FROM tp_catch_up($1::xid8, $2::bigint, $3::bigint[], $4::int) c`,
    [after.xid, after.id, skip, limit, node])
  return row!
}

/**
 * The horizon and the time now: every event of a transaction below it is visible (or never
 * will be). Marks `node` first, in the same statement: a crash from here on removes the mark.
 */
export async function horizon (db: Db, node: string): Promise<{ horizon: string, at_ms: number }> {
  const [row] = await db.query<{ horizon: string, at_ms: number }>(
    `WITH mark AS (INSERT INTO read_model_marks (node) VALUES ($1::uuid) ON CONFLICT (node) DO NOTHING)
     SELECT tp_horizon()::text AS horizon, (extract(epoch FROM now()) * 1000)::float8 AS at_ms`, [node])
  return row!
}

/** Every pool not deleted (or one), with its settings. */
export async function poolRows (db: Db, name?: string): Promise<PoolRow[]> {
  return await db.query<PoolRow>(
    `SELECT ${POOL_COLUMNS}, (extract(epoch FROM p.window_started_at) * 1000)::float8 AS window_started_at
       FROM pools p WHERE NOT p.deleted AND ($1::text IS NULL OR p.name = $1::text)`, [name ?? null])
}

/** A page of a pool's tokens after `after` in creation order; retired ones only while a lease may be running. */
export async function tokenRows (db: Db, pool: string, after: number, limit: number): Promise<TokenRow[]> {
  return await db.query<TokenRow>(
    `SELECT * FROM tp_model_rows r
      WHERE r.pool = $1 AND r.position > $2 AND (NOT r.retired OR r.expires_at IS NOT NULL)
      ORDER BY r.position LIMIT $3`,
    [pool, after, limit]
  )
}
