import { createHash } from 'node:crypto'
import type * as domain from '../domain/types.js'
import type { PoolHead } from '../pool/context.js'
import type { QueueState } from '../pool/waiting.js'
import type * as api from './schemas/tokens.js'

// Dates become ISO strings only here, at the HTTP edge.
const iso = (d: Date) => d.toISOString()
const isoOrNull = (d: Date | null) => (d === null ? null : d.toISOString())

/**
 * Who is reading: with ADMIN_TOKEN set, a caller without it sees only its own user id
 * (`self`); every other id reads as null, and `holder` tells holders apart.
 */
export interface Viewer {
  /** hide user ids other than `self` */
  masked: boolean
  /** add the `holder` fingerprint (whenever ADMIN_TOKEN is set) */
  fingerprints: boolean
  self?: string
}

export const EVERYONE: Viewer = { masked: false, fingerprints: false }

export const holderOf = (userId: string) => createHash('sha256').update(userId).digest('hex').slice(0, 12)

function user (v: Viewer, id: string | null): string | null {
  if (id === null) return null
  return !v.masked || id === v.self ? id : null
}

function holder (v: Viewer, id: string | null): { holder?: string | null } {
  return v.fingerprints ? { holder: id === null ? null : holderOf(id) } : {}
}

export function lease (l: domain.Lease, v: Viewer): api.LeaseJson {
  return {
    pool: l.pool,
    token_id: l.tokenId,
    // A lease answer is the caller's own; in the event stream it is anyone's.
    user_id: user(v, l.userId) as string,
    lease_id: l.leaseId,
    started_at: iso(l.startedAt),
    expires_at: iso(l.expiresAt),
    expires_in_seconds: l.expiresInSeconds,
    renewable_until: iso(l.renewableUntil),
    evicted_user_id: user(v, l.evictedUserId),
    ...holder(v, l.userId),
  }
}

export function endedLease (l: domain.EndedLease, v: Viewer): api.EndedLeaseJson {
  return {
    pool: l.pool,
    token_id: l.tokenId,
    lease_id: l.leaseId,
    user_id: user(v, l.userId),
    started_at: iso(l.startedAt),
    released_at: iso(l.releasedAt),
    release_reason: l.releaseReason,
    ...holder(v, l.userId),
  }
}

export function tokenSummary (t: domain.TokenView, v: Viewer): api.TokenSummaryJson {
  const a = t.activeUsage
  return {
    id: t.id,
    pool: t.pool,
    label: t.label,
    status: t.status,
    current_user_id: user(v, a?.userId ?? null),
    lease_id: a?.leaseId ?? null,
    started_at: a === null ? null : iso(a.startedAt),
    expires_at: a === null ? null : iso(a.expiresAt),
    cooling_until: isoOrNull(t.coolingUntil),
    disabled_reason: t.disabledReason,
    usage_count: t.usageCount,
    ...holder(v, a?.userId ?? null),
  }
}

export function tokenDetail (t: domain.TokenView, v: Viewer): api.TokenDetailJson {
  const a = t.activeUsage
  return {
    id: t.id,
    pool: t.pool,
    label: t.label,
    status: t.status,
    current_user_id: user(v, a?.userId ?? null),
    usage_count: t.usageCount,
    cooling_until: isoOrNull(t.coolingUntil),
    disabled_reason: t.disabledReason,
    active_usage: a === null
      ? null
      : {
          lease_id: a.leaseId,
          user_id: user(v, a.userId),
          started_at: iso(a.startedAt),
          expires_at: iso(a.expiresAt),
          renewable_until: iso(a.renewableUntil ?? a.expiresAt),
          ...holder(v, a.userId),
        },
    ...holder(v, a?.userId ?? null),
  }
}

export function head (h: PoolHead) {
  return {
    total: h.total,
    active: h.active,
    available: h.available,
    cooling: h.cooling,
    disabled: h.disabled,
    waiting: h.waiting,
    window_started_at: iso(h.windowStartedAt),
    window_resets_at: iso(h.windowResetsAt),
  }
}

export function usage (u: domain.Usage, v: Viewer) {
  return {
    lease_id: u.leaseId,
    user_id: user(v, u.userId),
    started_at: iso(u.startedAt),
    expires_at: iso(u.expiresAt),
    released_at: isoOrNull(u.releasedAt),
    release_reason: u.releaseReason,
    ...holder(v, u.userId),
  }
}

export function stats (s: domain.PoolStats): api.StatsJson {
  return {
    pool: s.pool,
    ...head(s),
    allocations_in_window: s.allocationsInWindow,
    usage_count: s.usageCount,
    least_used_count: s.leastUsedCount,
    least_used: s.leastUsed.map((t) => ({ token_id: t.tokenId, usage_count: t.usageCount })),
  }
}

export function pool (p: domain.PoolView) {
  return {
    name: p.name,
    size: p.size,
    lease_ttl_seconds: p.lease_ttl_seconds,
    lease_max_seconds: p.lease_max_seconds,
    usage_window_hours: p.usage_window_hours,
    on_exhausted: p.on_exhausted,
    max_wait_seconds: p.max_wait_seconds,
    cooldown_max_seconds: p.cooldown_max_seconds,
    user_quota: p.user_quota,
    total: p.total,
    active: p.active,
    available: p.available,
    cooling: p.cooling,
    disabled: p.disabled,
    waiting: p.waiting,
  }
}

export function queueState (s: QueueState): api.QueueStateJson {
  return { position: s.position, waiting: s.waiting, estimated_grant_at: s.estimatedGrantAt === null ? null : iso(s.estimatedGrantAt) }
}
