import { PoolError } from '../domain/errors.js'
import type { Id } from '../domain/ids.js'
import type { EndedLease, Lease, ReleaseReason, Usage } from '../domain/types.js'
import type * as leases from '../store/leases.js'
import { translateDbError } from '../store/sqlstate.js'
import type * as usages from '../store/usages.js'

// The refusals of the use cases, and the store's rows as the domain's answers.

/** Runs a read; a database failure becomes 503 saying nothing was changed. */
export async function read<T> (op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (err) {
    throw translateDbError(err, true)
  }
}

export function exhausted (pool: string, retryAfterMs: number | null): PoolError {
  if (retryAfterMs === null) {
    return new PoolError('pool_exhausted', 'No token is available: every token is disabled, and none frees up until an admin enables one.')
  }
  const retryAfterSeconds = wholeSeconds(retryAfterMs)
  return new PoolError('pool_exhausted', 'No token is available; try again when the earliest lease or cooldown ends.', {
    retryAfterSeconds, details: { pool, retry_after_seconds: retryAfterSeconds },
  })
}

export function quotaExceeded (pool: string, retryAfterMs: number | null): PoolError {
  const retryAfterSeconds = wholeSeconds(retryAfterMs ?? 1000)
  return new PoolError('quota_exceeded', `This user has taken its quota of new leases in pool ${pool} for this window.`, {
    retryAfterSeconds, details: { pool, retry_after_seconds: retryAfterSeconds },
  })
}

/** Retry-After: whole seconds, rounded up, at least 1. */
function wholeSeconds (ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

export function poolNotFound (name: string): PoolError {
  return new PoolError('not_found', `There is no pool named ${name}.`)
}

export function tokenNotFound (): PoolError {
  return new PoolError('not_found', 'The pool has no token with that id.')
}

export function notHolder (): PoolError {
  return new PoolError('not_holder', 'That user does not hold that token now.')
}

export function managedByConfig (): PoolError {
  return new PoolError('managed_by_config', 'The default pool is set by the environment (POOL_SIZE, LEASE_TTL_SECONDS, …) at every start; change it there.')
}

/** Whole seconds left until `until`, as `expires_in_seconds` shows them. */
function secondsLeft (until: Date, from: Date): number {
  return Math.max(0, Math.floor((until.getTime() - from.getTime()) / 1000))
}

export function ended (r: leases.DbEndedLease, reason: ReleaseReason): EndedLease {
  return { pool: r.pool, leaseId: r.lease_id, tokenId: r.token_id, userId: r.user_id, startedAt: r.started_at, releasedAt: r.released_at, releaseReason: reason }
}

export function releasedLease (r: leases.DbRelease): EndedLease {
  return { pool: r.pool!, leaseId: r.lease_id!, tokenId: r.token_id, userId: r.user_id, startedAt: r.started_at!, releasedAt: r.released_at!, releaseReason: 'released' }
}

export function renewedLease (r: leases.DbRenewal): Lease {
  return leaseOf(r.pool!, r, r.now, null, false)
}

/**
 * A lease as a batch answered it: a new one (granted now: its seconds left are its whole
 * length), or the user's running one, unchanged (rule 6), seconds left from the batch's now.
 */
export function grantedLease (pool: string, r: leases.DbGrant): Lease {
  const existing = r.outcome === 'existing'
  return leaseOf(pool, r, existing ? r.now : r.started_at!, r.evicted_user_id, !existing)
}

/** The lease columns a grant's or a renewal's row carries, set when it names a lease. */
type LeaseRow = Pick<leases.DbGrant, 'user_id' | 'token_id' | 'lease_id' | 'started_at' | 'expires_at' | 'renewable_until'>

function leaseOf (pool: string, r: LeaseRow, secondsFrom: Date, evictedUserId: Id | null, isNew: boolean): Lease {
  return {
    pool,
    tokenId: r.token_id!,
    userId: r.user_id,
    leaseId: r.lease_id!,
    startedAt: r.started_at!,
    expiresAt: r.expires_at!,
    renewableUntil: r.renewable_until!,
    expiresInSeconds: secondsLeft(r.expires_at!, secondsFrom),
    evictedUserId,
    isNew,
  }
}

export function usage (u: usages.DbUsage): Usage {
  return { leaseId: u.id, userId: u.user_id, startedAt: u.started_at, expiresAt: u.expires_at, releasedAt: u.released_at, releaseReason: u.release_reason }
}
