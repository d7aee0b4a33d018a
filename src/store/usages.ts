import type { ReleaseReason } from '../domain/types.js'
import type { Db } from './db.js'

export interface DbUsage {
  id: number
  user_id: string
  started_at: Date
  released_at: Date | null
  release_reason: ReleaseReason | null
}

/**
 * A token's usages, newest first, keyset-paged on the lease id so that paging
 * never skips or repeats. Leases that ran out read as expired at their expires_at
 * whether or not the sweep has written it yet (rule 3).
 */
export async function history (db: Db, tokenId: string, limit: number, beforeLeaseId: number | undefined): Promise<DbUsage[]> {
  return await db.query<DbUsage>(
    `SELECT u.id, u.user_id, u.started_at,
            CASE WHEN u.released_at IS NULL AND u.expires_at <= now() THEN u.expires_at ELSE u.released_at END AS released_at,
            CASE WHEN u.released_at IS NULL AND u.expires_at <= now() THEN 'expired' ELSE u.release_reason END AS release_reason
       FROM usages u
      WHERE u.token_id = $1::uuid AND ($2::bigint IS NULL OR u.id < $2::bigint)
      ORDER BY u.id DESC
      LIMIT $3`,
    [tokenId, beforeLeaseId ?? null, limit]
  )
}
