import type { PoolCounts, TokenStatus } from '../domain/types.js'
import type { Db } from './db.js'

export interface DbToken {
  id: string
  pool: string
  position: number
  label: string | null
  status: TokenStatus
  user_id: string | null
  lease_id: number | null
  started_at: Date | null
  expires_at: Date | null
  cooling_until: Date | null
  disabled_reason: string | null
  usage_count: number
}

export interface DbPoolHead extends PoolCounts {
  window_started_at: Date
  window_resets_at: Date
}

/** A pool's counts and window, from one snapshot; undefined for a pool that does not exist. */
export async function poolHead (db: Db, pool: string): Promise<DbPoolHead | undefined> {
  const [row] = await db.query<DbPoolHead>(
    `SELECT c.*, tp_waiting(p.name, now()) AS waiting, w.ws AS window_started_at, w.ws + make_interval(secs => p.usage_window_hours * 3600) AS window_resets_at
       FROM pools p
       CROSS JOIN LATERAL (SELECT tp_window_now(p, now()) AS ws) w
       CROSS JOIN LATERAL tp_pool_counts(p.name, now()) c
      WHERE p.name = $1 AND NOT p.deleted`,
    [pool]
  )
  return row
}

/**
 * Up to `limit` tokens of the pool after position `after`, in creation order, optionally
 * only those of one status. Keyset-paged on the token's position, so a whole pool is
 * read page by page in constant memory.
 */
export async function page (db: Db, pool: string, status: TokenStatus | undefined, after: number | undefined, limit: number): Promise<DbToken[]> {
  return await db.query<DbToken>(
    `SELECT * FROM tp_tokens($1, now()) v
      WHERE ($2::text IS NULL OR v.status = $2::text) AND ($3::bigint IS NULL OR v.position > $3::bigint)
      ORDER BY v.position LIMIT $4`,
    [pool, status ?? null, after ?? null, limit]
  )
}

/** One token as users see it, with its lease's cap, whichever pool holds it; undefined if not visible. */
export async function getToken (db: Db, id: string): Promise<(DbToken & { renewable_until: Date | null }) | undefined> {
  const [row] = await db.query<DbToken & { renewable_until: Date | null }>(
    `SELECT v.*, CASE WHEN v.lease_id IS NOT NULL THEN coalesce(u.renewable_until, u.expires_at) END AS renewable_until
       FROM tokens t
       CROSS JOIN LATERAL tp_tokens(t.pool, now()) v
       LEFT JOIN usages u ON u.id = v.lease_id
      WHERE t.id = $1::uuid AND v.id = $1::uuid`,
    [id]
  )
  return row
}

export interface DbStats {
  allocations_in_window: number
  min: number | null
  max: number | null
  mean: number | null
  least_used_count: number
  least_used: Array<{ token_id: string, usage_count: number }> | null
}

/** The window's usage figures over every visible token; the least-used list is capped at `leastUsedLimit` (0: neither it nor its count, which metrics don't need). */
export async function stats (db: Db, pool: string, leastUsedLimit: number): Promise<DbStats> {
  // Plain column tests over the pool's tokens (as tp_count and tp_tokens mean them): a
  // function call per row made this 3 s at 1,000,000 tokens.
  const [row] = await db.query<DbStats>(
    `WITH ws AS MATERIALIZED (SELECT tp_window_now(p, now()) AS ws FROM pools p WHERE p.name = $1),
          live AS (SELECT t.id, t.position, CASE WHEN t.counted_window = ws.ws THEN t.usage_count ELSE 0 END AS usage_count
                     FROM tokens t, ws WHERE t.pool = $1 AND (NOT t.retired OR t.lease_expires_at > now())),
          agg AS MATERIALIZED (
            SELECT min(usage_count) AS min, max(usage_count) AS max, avg(usage_count)::float8 AS mean,
                   coalesce(sum(usage_count), 0)::int AS allocations_in_window FROM live)
     SELECT agg.*,
            CASE WHEN $2 > 0 THEN (SELECT count(*)::int FROM live WHERE live.usage_count = agg.min) ELSE 0 END AS least_used_count,
            CASE WHEN $2 > 0 THEN
              (SELECT json_agg(json_build_object('token_id', l.id, 'usage_count', l.usage_count))
                 FROM (SELECT live.id, live.usage_count FROM live WHERE live.usage_count = agg.min
                        ORDER BY live.position LIMIT $2) l)
            END AS least_used
       FROM agg`,
    [pool, leastUsedLimit]
  )
  return row!
}
