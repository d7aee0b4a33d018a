/**
 * Terminology
 * - token: one of the pool's fixed, finite items (an API key, a seat, a slot), known by a UUID kept forever.
 * - lease: a user's right to one token until `expiresAt`; granted by allocation, never renewed.
 * - usage: the stored record of one lease, from grant to its end; the pool's history.
 * - window: the span of `USAGE_WINDOW_HOURS` over which usage counts accrue before going back to 0.
 * - eviction: ending the oldest lease early to hand its token to a new user when none is free.
 * - lease id: a fencing token; it grows with every new lease and never repeats.
 * - retired: a token beyond POOL_SIZE after a shrink; it keeps its id and history but takes no new lease.
 */

export const RELEASE_REASONS = ['expired', 'evicted', 'released', 'cleared'] as const
export type ReleaseReason = (typeof RELEASE_REASONS)[number]

export const TOKEN_STATUSES = ['active', 'available'] as const
export type TokenStatus = (typeof TOKEN_STATUSES)[number]

export const EXHAUSTION_POLICIES = ['evict_oldest', 'reject'] as const
export type ExhaustionPolicy = (typeof EXHAUSTION_POLICIES)[number]

/** A lease as the allocate call returns it. */
export interface Lease {
  tokenId: string
  userId: string
  /** fencing token: grows with every new lease */
  leaseId: number
  startedAt: Date
  expiresAt: Date
  /** whole seconds left when answered */
  expiresInSeconds: number
  /** the user whose lease was ended to make room, if any */
  evictedUserId: string | null
  /** false when the user already held this lease (idempotent allocate) */
  isNew: boolean
}

/** A lease that has ended. */
export interface EndedLease {
  leaseId: number
  tokenId: string
  userId: string
  startedAt: Date
  releasedAt: Date
  releaseReason: ReleaseReason
}

export interface ActiveUsage {
  userId: string
  startedAt: Date
  expiresAt: Date
}

export interface TokenView {
  id: string
  status: TokenStatus
  /** allocations in the current window */
  usageCount: number
  activeUsage: ActiveUsage | null
}

export interface Usage {
  leaseId: number
  userId: string
  startedAt: Date
  /** null while the lease is active */
  releasedAt: Date | null
  releaseReason: ReleaseReason | null
}

export interface WindowInfo {
  windowStartedAt: Date
  windowResetsAt: Date
}

export interface PoolCounts extends WindowInfo {
  total: number
  active: number
  available: number
}

export interface PoolStats extends PoolCounts {
  allocationsInWindow: number
  usageCount: { min: number, max: number, mean: number }
  leastUsed: Array<{ tokenId: string, usageCount: number }>
}
