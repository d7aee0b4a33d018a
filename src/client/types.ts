// The answers' types come from the TypeBox schemas the server validates with: one source, no copy.
// Type-only imports: nothing of the server's runtime ends up in the client.
import type { Static } from 'typebox'
import type { ErrorCode } from '../domain/errors.js'
import type { CreatePoolBody, PoolJson, UpdatePoolBody } from '../http/schemas/pools.js'
import type {
  Cleared as ClearedSchema, CooldownResult as CooldownResultSchema, EndedLeaseJson, HistoryJson, LeaseJson, StatsJson,
  TokenDetailJson, TokenListJson, TokenSummaryJson,
} from '../http/schemas/tokens.js'

/** A lease as allocate (and renew) return it. */
export type Lease = LeaseJson
/** A lease that ended, as release (and the released/cleared events) return it. */
export type EndedLease = EndedLeaseJson
/** One token in the list. */
export type TokenSummary = TokenSummaryJson
/** The whole pool's counts and window (and, for a page, next_cursor). */
export type PoolMeta = TokenListJson['meta']
/** One token with its active lease. */
export type TokenDetail = TokenDetailJson
/** One usage in a token's history; released_at and release_reason are null while active. */
export type Usage = HistoryJson['data']['usages'][number]
export type Stats = StatsJson
export type Cleared = Static<typeof ClearedSchema>
export type ClearedJson = Cleared['data']
/** active, available, cooling or disabled */
export type TokenStatus = TokenSummaryJson['status']
export type ReleaseReason = EndedLeaseJson['release_reason']
export type { ErrorCode }

/** A pool: its name, its settings and its counts. */
export type Pool = PoolJson
/** The body of POST /api/pools: a name, and any settings (the others take their defaults). */
export type CreatePool = Static<typeof CreatePoolBody>
/** The body of PATCH /api/pools/:pool: only the settings to change; `user_quota: null` removes a quota. */
export type PoolChanges = Static<typeof UpdatePoolBody>
/** What `on_exhausted` allows. */
export type ExhaustionPolicy = PoolJson['on_exhausted']
/** What DELETE /api/pools/:pool answers. */
export interface DeletedPool { name: string, deleted: boolean }

/** What a cooldown answers: the token, the lease it ended, and with reallocate the new lease or why there is none. */
export type CooldownResult = Static<typeof CooldownResultSchema>['data']
/** What disable answers: the token and the lease it ended, if any. */
export interface DisableResult { token: TokenDetail, ended_lease: EndedLease | null }
/** What enable answers. */
export interface EnableResult { token: TokenDetail }

/** One row of an NDJSON export: a usage, with its pool and token. */
export type ExportRow = Usage & { pool: string, token_id: string }
export type ExportFormat = 'ndjson' | 'csv'

/** The data of a pool_changed event: the pool as GET /api/pools/:pool shows it, or a deleted pool's name. */
export type PoolChange =
  | (Pool & { pool: string, deleted?: undefined })
  | { pool: string, name: string, deleted: true }

/**
 * One change from GET /api/events; `id` is its place in the stream (Last-Event-ID).
 * `reset` says that the stream resumed from beyond the service's kept window: some changes
 * are lost to this client, so re-read the state you need.
 */
export type PoolEvent =
  | { id: string, type: 'allocated' | 'renewed', data: Lease }
  | { id: string, type: 'released' | 'cleared', data: EndedLease }
  | { id: string, type: 'cooling' | 'disabled' | 'enabled', data: TokenSummary }
  | { id: string, type: 'pool_changed', data: PoolChange }
  | { id: string, type: 'reset', data: { pool: string | null } }
export type PoolEventType = PoolEvent['type']
/** The events about a lease: their data has user_id, token_id and lease_id. */
export type LeaseEvent = Extract<PoolEvent, { type: 'allocated' | 'renewed' | 'released' | 'cleared' }>
