import type { Id } from '../domain/ids.js'
import type { ReleaseReason } from '../domain/types.js'
import type { Db } from './db.js'

export interface DbUsage {
  id: number
  pool: string
  token_id: Id
  user_id: Id
  started_at: Date
  expires_at: Date
  released_at: Date | null
  release_reason: ReleaseReason | null
}

// Leases that ran out read as expired at their expires_at whether or not the sweep has written it yet (rule 3).
const COLUMNS = `u.id, u.pool, u.token_id, u.user_id, u.started_at, u.expires_at,
  CASE WHEN u.released_at IS NULL AND u.expires_at <= now() THEN u.expires_at ELSE u.released_at END AS released_at,
  CASE WHEN u.released_at IS NULL AND u.expires_at <= now() THEN 'expired' ELSE u.release_reason END AS release_reason`

/** A token's usages, newest first, keyset-paged on the lease id so that paging never skips or repeats. */
export async function history (db: Db, tokenId: string, limit: number, beforeLeaseId: number | undefined): Promise<DbUsage[]> {
  return await db.query<DbUsage>(
    `SELECT ${COLUMNS} FROM usages u
      WHERE u.token_id = $1::uuid AND ($2::bigint IS NULL OR u.id < $2::bigint)
      ORDER BY u.id DESC LIMIT $3`,
    [tokenId, beforeLeaseId ?? null, limit]
  )
}

/** A pool's usages started in [since, until), oldest first, keyset-paged on (started_at, id). */
export async function exportPage (
  db: Db, pool: string, since: Date | undefined, until: Date | undefined,
  after: { startedAt: Date, id: number } | undefined, limit: number
): Promise<DbUsage[]> {
  return await db.query<DbUsage>(
    `SELECT ${COLUMNS} FROM usages u
      WHERE u.pool = $1 AND ($2::timestamptz IS NULL OR u.started_at >= $2) AND ($3::timestamptz IS NULL OR u.started_at < $3)
        AND ($4::timestamptz IS NULL OR (u.started_at, u.id) > ($4::timestamptz, $5::bigint))
      ORDER BY u.started_at, u.id LIMIT $6`,
    [pool, since ?? null, until ?? null, after?.startedAt ?? null, after?.id ?? null, limit]
  )
}
