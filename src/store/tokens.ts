import type { TokenStatus } from '../domain/types.js'
import type { Db } from './db.js'

export interface DbToken {
  id: string
  active: boolean
  user_id: string | null
  started_at: Date | null
  expires_at: Date | null
  usage_count: number
}

export interface DbPoolCounts {
  total: number
  active: number
  window_started_at: Date
}

const windowSecs = (hours: number) => hours * 3600

// Tokens made or retired per statement: 50,000 take about a second, well inside the statement timeout.
const PROVISION_STEP = 50_000

/** Makes the pool hold exactly `size` live tokens (rule 1); ids are created once and kept. */
export async function provision (db: Db, size: number): Promise<void> {
  for (;;) {
    const [row] = await db.query<{ live: number }>('SELECT tp_provision($1, $2) AS live', [size, PROVISION_STEP])
    if (row?.live === size) return
  }
}

/** Every token in creation order, optionally filtered, with the whole pool's counts from the same snapshot. */
export async function listTokens (db: Db, windowHours: number, status: TokenStatus | undefined): Promise<{ tokens: DbToken[], counts: DbPoolCounts }> {
  const rows = await db.query<DbToken & { total: number, active_total: number, ws: Date, present: boolean }>(
    `WITH pool AS (SELECT * FROM tp_tokens(make_interval(secs => $1))),
          counts AS (SELECT count(*)::int AS total, (count(*) FILTER (WHERE active))::int AS active_total,
                            tp_window_start(make_interval(secs => $1)) AS ws FROM pool)
     SELECT p.id IS NOT NULL AS present, p.id, p.active, p.user_id, p.started_at, p.expires_at, p.usage_count,
            c.total, c.active_total, c.ws
       FROM counts c LEFT JOIN pool p ON $2::text IS NULL OR p.active = ($2::text = 'active')
      ORDER BY p.position`,
    [windowSecs(windowHours), status ?? null]
  )
  const first = rows[0]
  if (first === undefined) throw new Error('pool counts missing')
  return {
    tokens: rows.filter((r) => r.present),
    counts: { total: first.total, active: first.active_total, window_started_at: first.ws },
  }
}

/** One token as users see it, or undefined when the pool has no such (live) token. */
export async function getToken (db: Db, windowHours: number, id: string): Promise<DbToken | undefined> {
  const [row] = await db.query<DbToken>(
    'SELECT * FROM tp_tokens(make_interval(secs => $1)) WHERE id = $2::uuid',
    [windowSecs(windowHours), id]
  )
  return row
}

/** Whether the token ever existed (retired ones keep a readable history). */
export async function tokenExists (db: Db, id: string): Promise<boolean> {
  const rows = await db.query('SELECT 1 FROM tokens WHERE id = $1::uuid', [id])
  return rows.length > 0
}

export interface DbStats {
  window_started_at: Date
  total: number
  active: number
  allocations_in_window: number
  min: number | null
  max: number | null
  mean: number | null
  least_used: Array<{ token_id: string, usage_count: number }> | null
}

/** The window's figures; `leastUsed` lists every token at the minimum (a list as long as the pool when all are equal). */
export async function stats (db: Db, windowHours: number, leastUsed: boolean): Promise<DbStats> {
  const [row] = await db.query<DbStats>(
    `WITH pool AS (SELECT * FROM tp_tokens(make_interval(secs => $1))),
          agg AS (SELECT count(*)::int AS total, (count(*) FILTER (WHERE active))::int AS active,
                         min(usage_count) AS min, max(usage_count) AS max, avg(usage_count)::float8 AS mean FROM pool)
     SELECT tp_window_start(make_interval(secs => $1)) AS window_started_at, agg.*,
            (SELECT coalesce(sum(usage_count), 0)::int FROM tokens
              WHERE counted_window = tp_window_start(make_interval(secs => $1))) AS allocations_in_window,
            CASE WHEN $2 THEN
              (SELECT json_agg(json_build_object('token_id', p.id, 'usage_count', p.usage_count) ORDER BY p.position)
                 FROM pool p WHERE p.usage_count = agg.min)
            END AS least_used
       FROM agg`,
    [windowSecs(windowHours), leastUsed]
  )
  if (row === undefined) throw new Error('stats missing')
  return row
}
