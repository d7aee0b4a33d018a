import type * as domain from '../domain/types.js'
import type * as api from './schemas/tokens.js'

// Dates become ISO strings only here, at the HTTP edge.
const iso = (d: Date) => d.toISOString()
const isoOrNull = (d: Date | null) => (d === null ? null : d.toISOString())

export function lease (l: domain.Lease): api.LeaseJson {
  return {
    token_id: l.tokenId,
    user_id: l.userId,
    lease_id: l.leaseId,
    started_at: iso(l.startedAt),
    expires_at: iso(l.expiresAt),
    expires_in_seconds: l.expiresInSeconds,
    evicted_user_id: l.evictedUserId,
  }
}

export function endedLease (l: domain.EndedLease): api.EndedLeaseJson {
  return {
    token_id: l.tokenId,
    lease_id: l.leaseId,
    user_id: l.userId,
    started_at: iso(l.startedAt),
    released_at: iso(l.releasedAt),
    release_reason: l.releaseReason,
  }
}

export function tokenSummary (t: domain.TokenView): api.TokenSummaryJson {
  return {
    id: t.id,
    status: t.status,
    current_user_id: t.activeUsage?.userId ?? null,
    started_at: t.activeUsage === null ? null : iso(t.activeUsage.startedAt),
    expires_at: t.activeUsage === null ? null : iso(t.activeUsage.expiresAt),
    usage_count: t.usageCount,
  }
}

export function tokenDetail (t: domain.TokenView): api.TokenDetailJson {
  return {
    id: t.id,
    status: t.status,
    current_user_id: t.activeUsage?.userId ?? null,
    usage_count: t.usageCount,
    active_usage: t.activeUsage === null
      ? null
      : { user_id: t.activeUsage.userId, started_at: iso(t.activeUsage.startedAt), expires_at: iso(t.activeUsage.expiresAt) },
  }
}

export function window (w: domain.WindowInfo) {
  return { window_started_at: iso(w.windowStartedAt), window_resets_at: iso(w.windowResetsAt) }
}

export function usage (u: domain.Usage) {
  return { lease_id: u.leaseId, user_id: u.userId, started_at: iso(u.startedAt), released_at: isoOrNull(u.releasedAt), release_reason: u.releaseReason }
}

export function stats (s: domain.PoolStats): api.StatsJson {
  return {
    ...window(s),
    total: s.total,
    active: s.active,
    available: s.available,
    allocations_in_window: s.allocationsInWindow,
    usage_count: s.usageCount,
    least_used: s.leastUsed.map((t) => ({ token_id: t.tokenId, usage_count: t.usageCount })),
  }
}
