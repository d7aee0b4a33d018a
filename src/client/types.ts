// The answers' types come from the TypeBox schemas the server validates with: one source, no copy.
import type { Static } from 'typebox'
import type { ErrorCode } from '../domain/errors.js'
import type {
  Cleared as ClearedSchema, EndedLeaseJson, HistoryJson, LeaseJson, StatsJson, TokenDetailJson, TokenListJson, TokenSummaryJson,
} from '../http/schemas/tokens.js'

/** A lease as allocate returns it. */
export type Lease = LeaseJson
/** A lease that ended, as release (and the released/cleared events) return it. */
export type EndedLease = EndedLeaseJson
/** One token in the list. */
export type TokenSummary = TokenSummaryJson
/** The whole pool's counts and window. */
export type PoolMeta = TokenListJson['meta']
/** One token with its active lease. */
export type TokenDetail = TokenDetailJson
/** One usage in a token's history; released_at and release_reason are null while active. */
export type Usage = HistoryJson['data']['usages'][number]
export type Stats = StatsJson
export type Cleared = Static<typeof ClearedSchema>
export type ClearedJson = Cleared['data']
export type TokenStatus = TokenSummaryJson['status']
export type ReleaseReason = EndedLeaseJson['release_reason']
export type { ErrorCode }

/** One change from GET /api/events; `id` is its place in the stream (Last-Event-ID). */
export type PoolEvent =
  | { id: string, type: 'allocated', data: Lease }
  | { id: string, type: 'released' | 'cleared', data: EndedLease }
