import { Type, type Static } from 'typebox'
import { TOKEN_STATUSES } from '../../domain/types.js'
import { Nullable, NullableTimestamp, ReleaseReason, StringEnum, Timestamp, Uuid } from './common.js'

export const Lease = Type.Object({
  token_id: Uuid('the token leased'),
  user_id: Uuid('its holder'),
  lease_id: Type.Integer({ description: 'fencing token: grows with every new lease in the pool, never repeats' }),
  started_at: Timestamp('when the lease was granted'),
  expires_at: Timestamp('when it ends unless released or evicted first'),
  expires_in_seconds: Type.Integer({ description: 'whole seconds left' }),
  evicted_user_id: Nullable(Uuid('the user evicted to make room')),
})
export type LeaseJson = Static<typeof Lease>

export const EndedLease = Type.Object({
  token_id: Uuid('the token'),
  lease_id: Type.Integer({ description: 'the lease that ended (its fencing token)' }),
  user_id: Uuid('who held it'),
  started_at: Timestamp('when the lease was granted'),
  released_at: Timestamp('when it ended'),
  release_reason: ReleaseReason,
})
export type EndedLeaseJson = Static<typeof EndedLease>

export const TokenStatus = StringEnum(TOKEN_STATUSES, 'active: leased now; available: free to lease')

export const TokenSummary = Type.Object({
  id: Uuid('the token'),
  status: TokenStatus,
  current_user_id: Nullable(Uuid('its holder, when active')),
  started_at: NullableTimestamp('start of the active lease'),
  expires_at: NullableTimestamp('end of the active lease'),
  usage_count: Type.Integer({ description: 'allocations in the current window' }),
})
export type TokenSummaryJson = Static<typeof TokenSummary>

export const PoolMeta = Type.Object({
  total: Type.Integer(),
  active: Type.Integer(),
  available: Type.Integer(),
  window_started_at: Timestamp('start of the current usage window'),
  window_resets_at: Timestamp('when usage counts go back to 0'),
})

export const ListQuery = Type.Object({
  status: Type.Optional(TokenStatus),
})

export const TokenList = Type.Object({ data: Type.Array(TokenSummary), meta: PoolMeta })
export type TokenListJson = Static<typeof TokenList>

export const TokenDetail = Type.Object({
  id: Uuid('the token'),
  status: TokenStatus,
  current_user_id: Nullable(Uuid('its holder, when active')),
  usage_count: Type.Integer({ description: 'allocations in the current window' }),
  active_usage: Nullable(Type.Object({
    user_id: Uuid('holder'),
    started_at: Timestamp('start'),
    expires_at: Timestamp('end'),
  })),
})
export type TokenDetailJson = Static<typeof TokenDetail>

export const HistoryQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' })),
})

export const Usage = Type.Object({
  lease_id: Type.Integer({ description: 'the lease this usage records' }),
  user_id: Uuid('who held the token'),
  started_at: Timestamp('granted'),
  released_at: NullableTimestamp('ended; null while active'),
  release_reason: Nullable(ReleaseReason),
})

export const History = Type.Object({
  data: Type.Object({ token_id: Uuid('the token'), usages: Type.Array(Usage) }),
  meta: Type.Object({ next_cursor: Nullable(Type.String({ description: 'pass as cursor for the next page; null on the last' })) }),
})
export type HistoryJson = Static<typeof History>

export const Cleared = Type.Object({ data: Type.Object({ cleared_tokens: Type.Integer() }) })

export const Stats = Type.Object({
  window_started_at: Timestamp('start of the current usage window'),
  window_resets_at: Timestamp('when usage counts go back to 0'),
  total: Type.Integer(),
  active: Type.Integer(),
  available: Type.Integer(),
  allocations_in_window: Type.Integer(),
  usage_count: Type.Object({ min: Type.Integer(), max: Type.Integer(), mean: Type.Number() }),
  least_used: Type.Array(Type.Object({ token_id: Uuid('token'), usage_count: Type.Integer() })),
})
export type StatsJson = Static<typeof Stats>
