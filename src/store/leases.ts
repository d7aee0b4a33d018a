import type { Id } from '../domain/ids.js'
import type { Db } from './db.js'

export interface DbGrant {
  user_id: Id
  outcome: 'new' | 'existing' | 'exhausted' | 'quota' | 'no_pool' | 'queued' | 'requeue' | 'gone' | 'granted'
  lease_id: number | null
  token_id: Id | null
  started_at: Date | null
  expires_at: Date | null
  renewable_until: Date | null
  evicted_user_id: Id | null
  retry_after_ms: number | null
  /** queued: the place in the pool's queue (1 is next), how many wait, the served-by time */
  position: number | null
  waiting: number | null
  estimated_grant_at: Date | null
  /** queued: when the node should look again (a deadline, or a node ahead that may be dead) */
  wake_at: Date | null
  /** the database's clock when the grant was answered */
  now: Date
}

export interface DbEndedLease {
  lease_id: number
  pool: string
  token_id: Id
  user_id: Id
  started_at: Date
  released_at: Date
}

export interface AllocateBatch {
  users: string[]
  /** those of `users` that may be served as newcomers: all but waiters being tried again */
  fresh: string[]
  /** those of `users` that may wait (rule 12) */
  queue: string[]
  /** this process, which keeps its queue rows alive */
  node: string
  /** take the pool's turn exclusively (anyone waits, or the batch would) */
  exclusive: boolean
  /** how long a queue row lives past its last heartbeat */
  aliveMs: number
}

export interface AllocatedBatch {
  /** one row per distinct user asked for, and one per waiter of another node granted */
  grants: DbGrant[]
  /** leases this allocation wrote as run out (their user's, or their token's, the sweep not there yet) */
  expired: DbEndedLease[]
}

/** Allocates in one pool for many users in one transaction (tp_allocate). */
export async function allocateMany (db: Db, pool: string, b: AllocateBatch): Promise<AllocatedBatch> {
  const rows = await db.query<Omit<DbGrant, 'outcome'> & { outcome: DbGrant['outcome'] | 'expired' }>(
    'SELECT a.*, date_trunc(\'milliseconds\', clock_timestamp()) AS now ' +
    'FROM tp_allocate_reporting_expiries($1, $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid, $6, $7) a',
    [pool, b.users, b.fresh, b.queue, b.node, b.exclusive, b.aliveMs]
  )
  const grants: DbGrant[] = []
  const expired: DbEndedLease[] = []
  for (const r of rows) {
    if (r.outcome === 'expired') {
      expired.push({ lease_id: r.lease_id!, pool, token_id: r.token_id!, user_id: r.user_id, started_at: r.started_at!, released_at: r.expires_at! })
    } else {
      grants.push({ ...r, outcome: r.outcome })
    }
  }
  return { grants, expired }
}

export interface DbRelease {
  token_id: Id
  user_id: Id
  outcome: 'released' | 'not_holder' | 'not_found'
  pool: string | null
  lease_id: number | null
  started_at: Date | null
  released_at: Date | null
}

/** The holders give their tokens back, many in one transaction (tp_release each); one row per pair. */
export async function releaseMany (db: Db, pairs: Array<{ tokenId: string, userId: string }>): Promise<DbRelease[]> {
  return await db.query<DbRelease>('SELECT * FROM tp_release_many($1::uuid[], $2::uuid[])',
    [pairs.map((p) => p.tokenId), pairs.map((p) => p.userId)])
}

export interface DbRenewal {
  token_id: Id
  user_id: Id
  outcome: 'renewed' | 'not_holder' | 'not_found' | 'limit'
  pool: string | null
  lease_id: number | null
  started_at: Date | null
  expires_at: Date | null
  renewable_until: Date | null
  now: Date
}

/** Renews many leases in one transaction (tp_renew each); one row per pair. */
export async function renewMany (db: Db, pairs: Array<{ tokenId: string, userId: string }>): Promise<DbRenewal[]> {
  return await db.query<DbRenewal>(
    // now(): the statement's time, which its renewed events carry too (their expires_in_seconds).
    'SELECT r.*, date_trunc(\'milliseconds\', now()) AS now FROM tp_renew_many($1::uuid[], $2::uuid[]) r',
    [pairs.map((p) => p.tokenId), pairs.map((p) => p.userId)])
}

export async function clear (db: Db, pool: string): Promise<DbEndedLease[]> {
  return await db.query<DbEndedLease>('SELECT * FROM tp_clear($1)', [pool])
}

/** Writes the end of leases that ran out (bookkeeping only; availability never waits for it). */
export async function sweepExpired (db: Db, limit: number): Promise<DbEndedLease[]> {
  return await db.query<DbEndedLease>('SELECT * FROM tp_sweep($1)', [limit])
}
