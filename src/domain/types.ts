import type { Id } from './ids.js'

/**
 * Terminology
 * - pool: a named, fixed set of tokens of one kind, with its own settings; `default` always exists.
 * - token: one of a pool's finite items (an API key, a seat, a slot), known by a UUID kept forever.
 * - lease: a user's right to one token until `expiresAt`; granted by allocation, renewable up to `renewableUntil`.
 * - usage: the stored record of one lease, from grant to its end; the pool's history.
 * - window: the span of `usage_window_hours` over which usage counts accrue before going back to 0.
 * - eviction: ending the oldest lease early to hand its token to a new user when none is free.
 * - lease id: a fencing token; it grows with every new lease (across pools) and never repeats.
 * - cooling / disabled: a token kept out of use for a while, or until an admin enables it.
 * - retired: a token beyond the pool's size after a shrink (or of a deleted pool); it keeps its id and history.
 */

export const RELEASE_REASONS = ['expired', 'evicted', 'released', 'cleared', 'cooldown', 'disabled'] as const
export type ReleaseReason = (typeof RELEASE_REASONS)[number]

export const TOKEN_STATUSES = ['active', 'available', 'cooling', 'disabled'] as const
export type TokenStatus = (typeof TOKEN_STATUSES)[number]

export const EXHAUSTION_POLICIES = ['evict_oldest', 'reject'] as const
export type ExhaustionPolicy = (typeof EXHAUSTION_POLICIES)[number]

export const DEFAULT_POOL = 'default'
/** 1–63 of [a-z0-9_-], starting with a letter or digit. */
export const POOL_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$'

/**
 * The shortest lease, cap and usage window: 1 ms. The database keeps times to the µs, so a
 * shorter one could end where it starts (a lease never active, a window of zero length).
 */
export const MIN_DURATION_SECONDS = 0.001
export const MIN_WINDOW_HOURS = MIN_DURATION_SECONDS / 3600

/** A pool's settings, named as users and the database name them. */
export interface PoolSettings {
  size: number
  lease_ttl_seconds: number
  lease_max_seconds: number
  usage_window_hours: number
  on_exhausted: ExhaustionPolicy
  max_wait_seconds: number
  cooldown_max_seconds: number
  /** new leases one user may take per window; null: no limit */
  user_quota: number | null
}

export const SETTING_DEFAULTS: Omit<PoolSettings, 'lease_max_seconds'> = {
  size: 100,
  lease_ttl_seconds: 120,
  usage_window_hours: 24,
  on_exhausted: 'evict_oldest',
  max_wait_seconds: 60,
  cooldown_max_seconds: 3600,
  user_quota: null,
}

/** Settings with their defaults filled in; lease_max_seconds defaults to the TTL. */
export function withDefaults (given: Partial<PoolSettings>): PoolSettings {
  const s = { ...SETTING_DEFAULTS, ...given }
  return { ...s, lease_max_seconds: given.lease_max_seconds ?? s.lease_ttl_seconds }
}

/** One setting a configuration changed from what a pool had. */
export interface SettingChange {
  setting: keyof PoolSettings
  from: PoolSettings[keyof PoolSettings]
  to: PoolSettings[keyof PoolSettings]
}

/** The settings `next` changes from `before`, in the settings' order. */
export function settingChanges (before: PoolSettings, next: PoolSettings): SettingChange[] {
  return (Object.keys(next) as Array<keyof PoolSettings>)
    .filter((k) => before[k] !== next[k])
    .map((k) => ({ setting: k, from: before[k], to: next[k] }))
}

export interface PoolCounts {
  total: number
  active: number
  available: number
  cooling: number
  disabled: number
  /** users waiting in the pool's queue for a token now (rule 12), on every node */
  waiting: number
}

export interface PoolView extends PoolSettings, PoolCounts {
  name: string
}

/** A lease as the allocate call returns it. */
export interface Lease {
  pool: string
  tokenId: Id
  userId: Id
  /** fencing token: grows with every new lease */
  leaseId: number
  startedAt: Date
  expiresAt: Date
  /** started_at + lease_max_seconds: renewals never go past it */
  renewableUntil: Date
  /** whole seconds left when answered */
  expiresInSeconds: number
  /** the user whose lease was ended to make room, if any */
  evictedUserId: Id | null
  /** false when the user already held this lease (idempotent allocate) */
  isNew: boolean
}

/** A lease that has ended. */
export interface EndedLease {
  pool: string
  leaseId: number
  tokenId: Id
  userId: Id
  startedAt: Date
  releasedAt: Date
  releaseReason: ReleaseReason
}

export interface ActiveUsage {
  leaseId: number
  userId: Id
  startedAt: Date
  expiresAt: Date
  /** only where it was read (a single token's view) */
  renewableUntil?: Date
}

export interface TokenView {
  id: Id
  pool: string
  label: string | null
  status: TokenStatus
  /** allocations in the current window */
  usageCount: number
  coolingUntil: Date | null
  disabledReason: string | null
  activeUsage: ActiveUsage | null
}

export interface Usage {
  leaseId: number
  userId: Id
  startedAt: Date
  expiresAt: Date
  /** null while the lease is active */
  releasedAt: Date | null
  releaseReason: ReleaseReason | null
}

export interface WindowInfo {
  windowStartedAt: Date
  windowResetsAt: Date
}

export interface PoolStats extends PoolCounts, WindowInfo {
  pool: string
  allocationsInWindow: number
  usageCount: { min: number, max: number, mean: number }
  leastUsedCount: number
  leastUsed: Array<{ tokenId: Id, usageCount: number }>
}
