import type { Id } from '../domain/ids.js'
import type { ReleaseReason } from '../domain/types.js'
import type { Db } from './db.js'

/** The NOTIFY channel that wakes event readers; the payload is the schema that changed, so pools can share a database. */
export const EVENTS_CHANNEL = 'token_pool_events'

/** Wakes every node's reader; sent after a commit, never inside the writing transaction. */
export async function notifyReaders (db: Db): Promise<void> {
  await db.query('SELECT pg_notify($1, current_schema())', [EVENTS_CHANNEL])
}

export type DbEventType = 'allocated' | 'renewed' | 'released' | 'cleared' | 'cooling' | 'disabled' | 'enabled' | 'pool_changed'

export interface DbEvent {
  id: number
  /** the writing transaction's id (xid8, as text): events are read in (xid, id) order */
  xid: string
  type: DbEventType
  pool: string
  /** lease events: the lease */
  lease_id: number | null
  token_id: Id | null
  user_id: Id | null
  started_at: Date | null
  expires_at: Date | null
  renewable_until: Date | null
  released_at: Date | null
  release_reason: ReleaseReason | null
  evicted_user_id: Id | null
  /** renewed events: when the renewal was */
  renewed_at: Date | null
  /** token and pool events: the view at that moment, as JSON */
  body: Record<string, unknown> | null
}

/** A place in the stream: everything at or before it has been read. */
export interface Position {
  xid: string
  id: number
}

export const START: Position = { xid: '0', id: 0 }

const COLUMNS = `id, xid::text AS xid, type, pool, lease_id, token_id, user_id, started_at, expires_at,
                 renewable_until, released_at, release_reason, evicted_user_id, renewed_at, body`

// Below the oldest transaction of this database still running, no event can appear any
// more (tp_horizon, migration 0031; a transaction in another database holds nothing back).
const SETTLED = 'xid < (SELECT tp_horizon())'

/** Settled events after `after`, in stream order; not the read models' `refresh` marks. */
export async function readAfter (db: Db, after: Position, limit: number): Promise<DbEvent[]> {
  return await db.query<DbEvent>(
    `SELECT ${COLUMNS} FROM pool_events e
      WHERE (e.xid, e.id) > ($1::xid8, $2::bigint) AND e.${SETTLED} AND e.type <> 'refresh'
      ORDER BY e.xid, e.id LIMIT $3`,
    [after.xid, after.id, limit]
  )
}

/** The last settled event's position: reading from here gives only what happens next. */
export async function head (db: Db): Promise<Position> {
  const [row] = await db.query<Position>(
    // Ordered by the xid8 column itself: its text sorts '998' after '2526'.
    `SELECT e.xid::text AS xid, e.id FROM pool_events e WHERE e.${SETTLED} ORDER BY e.xid DESC, e.id DESC LIMIT 1`
  )
  return row ?? START
}

/**
 * Where to resume after the event a client saw last (SSE Last-Event-ID): right after it
 * while it is still kept. Any other id gets `reset` — the client must re-read the state —
 * and the stream goes on from now: an id older than the kept window (its events are
 * gone), and one this log never had (newer than any, from another database, or of a
 * transaction rolled back), since what the client holds is not this log's state.
 */
export async function resumeAfter (db: Db, lastId: number): Promise<{ from: Position, reset: boolean }> {
  const [row] = await db.query<{ xid: string | null, oldest: number | null }>(
    `SELECT (SELECT xid::text FROM pool_events WHERE id = $1::bigint) AS xid,
            (SELECT min(id) FROM pool_events) AS oldest`,
    [lastId]
  )
  if (row?.xid != null) return { from: { xid: row.xid, id: lastId }, reset: false }
  // The event right before the oldest kept one (0 when the log is empty or starts at 1):
  // nothing was pruned after it, so everything kept follows it.
  if (lastId === (row?.oldest ?? 1) - 1) return { from: START, reset: false }
  return { from: await head(db), reset: true }
}

/**
 * Drops events that are both beyond the newest `keep` and older than an hour, and only
 * settled ones (below every running transaction), which every live reader has passed.
 */
export async function prune (db: Db, keep: number): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `WITH gone AS (
       DELETE FROM pool_events e
        WHERE e.id < (SELECT id FROM pool_events ORDER BY id DESC OFFSET greatest($1::int, 1) - 1 LIMIT 1)
          AND e.created_at < now() - interval '1 hour'
          AND e.${SETTLED}
       RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [keep]
  )
  return row?.n ?? 0
}

/** The schema this connection works in: notifications for other schemas are not ours. */
export async function currentSchema (db: Db): Promise<string> {
  const [row] = await db.query<{ schema: string }>('SELECT current_schema() AS schema')
  return row?.schema ?? 'public'
}
