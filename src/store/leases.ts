import type { Db } from './db.js'

export interface DbGrant {
  user_id: string
  outcome: 'new' | 'existing' | 'exhausted'
  lease_id: number | null
  token_id: string | null
  started_at: Date | null
  expires_at: Date | null
  evicted_user_id: string | null
  retry_after_ms: number | null
  /** the database's clock when the grant was answered */
  now: Date
}

export interface DbEndedLease {
  lease_id: number
  token_id: string
  user_id: string
  started_at: Date
  released_at: Date
}

export interface LeaseTerms {
  /** seconds; fractional allowed */
  ttlSeconds: number
  /** hours */
  windowHours: number
  evict: boolean
}

/** Allocates for many users in one transaction (tp_allocate); one row per distinct user. */
export async function allocateMany (db: Db, userIds: string[], terms: LeaseTerms): Promise<DbGrant[]> {
  return await db.query<DbGrant>(
    `SELECT a.*, date_trunc('milliseconds', clock_timestamp()) AS now
       FROM tp_allocate($1::uuid[], make_interval(secs => $2), make_interval(secs => $3), $4) a`,
    [userIds, terms.ttlSeconds, terms.windowHours * 3600, terms.evict]
  )
}

export interface DbRelease {
  outcome: 'released' | 'not_holder' | 'not_found'
  lease_id: number | null
  started_at: Date | null
  released_at: Date | null
}

export async function release (db: Db, tokenId: string, userId: string): Promise<DbRelease> {
  const [row] = await db.query<DbRelease>('SELECT * FROM tp_release($1::uuid, $2::uuid)', [tokenId, userId])
  if (row === undefined) throw new Error('tp_release returned no row')
  return row
}

export async function clear (db: Db): Promise<DbEndedLease[]> {
  return await db.query<DbEndedLease>('SELECT * FROM tp_clear()')
}

/** Writes the end of leases that ran out (bookkeeping only; availability never waits for it). */
export async function sweepExpired (db: Db, limit: number): Promise<DbEndedLease[]> {
  return await db.query<DbEndedLease>('SELECT * FROM tp_sweep($1)', [limit])
}

/** Rolls the usage window when it has ended, so no allocation pays for it. */
export async function settleWindow (db: Db, windowHours: number): Promise<void> {
  await db.query('SELECT tp_current_window(make_interval(secs => $1))', [windowHours * 3600])
}
