import { Type, type Static } from 'typebox'
import { TOKEN_STATUSES } from '../../domain/types.js'
import { Holder, Nullable, NullableInput, NullableTimestamp, PoolName, ReleaseReason, StringEnum, Timestamp, Uuid } from './common.js'

// With ADMIN_TOKEN set, another user's id reads as null to a caller without the admin
// token, and `holder` (a fingerprint of the id) tells holders apart.
const MaskedUser = (description: string) => Nullable(Uuid(`${description}; null when hidden from this caller`))

export const Lease = Type.Object({
  pool: PoolName('the pool'),
  token_id: Uuid('the token leased'),
  user_id: Uuid('its holder'),
  lease_id: Type.Integer({ description: 'fencing token: grows with every new lease, never repeats' }),
  started_at: Timestamp('when the lease was granted'),
  expires_at: Timestamp('when it ends unless released, renewed or evicted first'),
  expires_in_seconds: Type.Integer({ description: 'whole seconds left' }),
  renewable_until: Timestamp('started_at + lease_max_seconds: renewals never pass it'),
  evicted_user_id: MaskedUser('the user evicted to make room'),
  holder: Type.Optional(Holder),
})
export type LeaseJson = Static<typeof Lease>

export const EndedLease = Type.Object({
  pool: PoolName('the pool'),
  token_id: Uuid('the token'),
  lease_id: Type.Integer({ description: 'the lease that ended (its fencing token)' }),
  user_id: MaskedUser('who held it'),
  started_at: Timestamp('when the lease was granted'),
  released_at: Timestamp('when it ended'),
  release_reason: ReleaseReason,
  holder: Type.Optional(Holder),
})
export type EndedLeaseJson = Static<typeof EndedLease>

export const TokenStatus = StringEnum(TOKEN_STATUSES, 'active: leased now; available: free to lease; cooling: out until cooling_until; disabled: out until enabled')

export const TokenSummary = Type.Object({
  id: Uuid('the token'),
  pool: PoolName('its pool'),
  label: Nullable(Type.String({ description: 'for people' })),
  status: TokenStatus,
  current_user_id: MaskedUser('its holder, when active'),
  lease_id: Nullable(Type.Integer({ description: 'the active lease' })),
  started_at: NullableTimestamp('start of the active lease'),
  expires_at: NullableTimestamp('end of the active lease'),
  cooling_until: NullableTimestamp('end of the cooldown, while cooling'),
  disabled_reason: Nullable(Type.String({ description: 'why an admin disabled it' })),
  usage_count: Type.Integer({ description: 'allocations in the current window' }),
  holder: Type.Optional(Holder),
})
export type TokenSummaryJson = Static<typeof TokenSummary>

export const PoolCounts = {
  total: Type.Integer({ description: 'tokens in the pool' }),
  active: Type.Integer({ description: 'leased now' }),
  available: Type.Integer({ description: 'free to lease now' }),
  cooling: Type.Integer({ description: 'in a cooldown' }),
  disabled: Type.Integer({ description: 'disabled by an admin' }),
  waiting: Type.Integer({ description: 'users waiting in the pool\'s queue for a token now (rule 12), on every node; a user waiting with several requests counts once' }),
}

export const ListMeta = Type.Object({
  ...PoolCounts,
  window_started_at: Timestamp('start of the current usage window'),
  window_resets_at: Timestamp('when usage counts go back to 0'),
  next_cursor: Nullable(Type.String({ description: 'pass as cursor for the next page; null on the last' })),
})

export const ListQuery = Type.Object({
  status: Type.Optional(TokenStatus),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'a page of at most this many; without it, every token, streamed' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' })),
})

export const TokenList = Type.Object({ data: Type.Array(TokenSummary), meta: ListMeta })
export type TokenListJson = Static<typeof TokenList>

export const TokenDetail = Type.Object({
  id: Uuid('the token'),
  pool: PoolName('its pool'),
  label: Nullable(Type.String({ description: 'for people' })),
  status: TokenStatus,
  current_user_id: MaskedUser('its holder, when active'),
  usage_count: Type.Integer({ description: 'allocations in the current window' }),
  cooling_until: NullableTimestamp('end of the cooldown, while cooling'),
  disabled_reason: Nullable(Type.String({ description: 'why an admin disabled it' })),
  active_usage: Nullable(Type.Object({
    lease_id: Type.Integer({ description: 'the active lease' }),
    user_id: MaskedUser('holder'),
    started_at: Timestamp('start'),
    expires_at: Timestamp('end'),
    renewable_until: Timestamp('the renewal cap'),
    holder: Type.Optional(Holder),
  })),
  holder: Type.Optional(Holder),
})
export type TokenDetailJson = Static<typeof TokenDetail>

export const HistoryQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' })),
})

export const Usage = Type.Object({
  lease_id: Type.Integer({ description: 'the lease this usage records' }),
  user_id: MaskedUser('who held the token'),
  started_at: Timestamp('granted'),
  expires_at: Timestamp('when it ends or ended at the latest'),
  released_at: NullableTimestamp('ended; null while active'),
  release_reason: Nullable(ReleaseReason),
  holder: Type.Optional(Holder),
})

export const History = Type.Object({
  data: Type.Object({ token_id: Uuid('the token'), usages: Type.Array(Usage) }),
  meta: Type.Object({ next_cursor: Nullable(Type.String({ description: 'pass as cursor for the next page; null on the last' })) }),
})
export type HistoryJson = Static<typeof History>

export const Cleared = Type.Object({ data: Type.Object({ cleared_tokens: Type.Integer() }) })

export const StatsQuery = Type.Object({
  least_used_limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: 'list at most this many least-used tokens' })),
})

export const Stats = Type.Object({
  pool: PoolName('the pool'),
  window_started_at: Timestamp('start of the current usage window'),
  window_resets_at: Timestamp('when usage counts go back to 0'),
  ...PoolCounts,
  allocations_in_window: Type.Integer(),
  usage_count: Type.Object({ min: Type.Integer(), max: Type.Integer(), mean: Type.Number() }),
  least_used_count: Type.Integer({ description: 'how many tokens have the minimum count' }),
  least_used: Type.Array(Type.Object({ token_id: Uuid('token'), usage_count: Type.Integer() })),
})
export type StatsJson = Static<typeof Stats>

export const WaitSeconds = Type.Number({
  minimum: 0,
  description: "how long to wait for a token when none is free (rule 12): 0 (the default) to the pool's max_wait_seconds",
  examples: [0, 30],
})

export const AllocateBody = Type.Object({
  user_id: Uuid('the user asking'),
  wait_seconds: Type.Optional(WaitSeconds),
}, { description: 'who is asking, and how long it may wait' })

export const QueueState = Type.Object({
  position: Type.Integer({ minimum: 1, description: 'place in the pool\'s queue: 1 is served next' }),
  waiting: Type.Integer({ minimum: 1, description: 'how many wait in the pool' }),
  estimated_grant_at: NullableTimestamp('the latest this waiter is served (the position-th earliest lease end or cooldown end), barring renewals, longer cooldowns, disables or a shrink; null when fewer tokens will free up'),
}, { description: 'a queued event' })

export type QueueStateJson = Static<typeof QueueState>

export const CooldownBody = Type.Object({
  user_id: Type.Optional(Uuid('the holder; leave out for an admin cooldown')),
  wait_seconds: Type.Optional(WaitSeconds),
  seconds: Type.Number({ exclusiveMinimum: 0, maximum: 604_800, description: "how long, at most the pool's cooldown_max_seconds" }),
  reallocate: Type.Optional(Type.Boolean({ default: false, description: 'also return the holder a new lease on another token' })),
}, { additionalProperties: false })

export const CooldownResult = Type.Object({
  data: Type.Object({
    token: TokenDetail,
    ended_lease: Nullable(EndedLease),
    lease: Nullable(Lease),
    lease_error: Nullable(Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) })),
  }),
})

export const DisableBody = Type.Object({
  reason: Type.Optional(NullableInput(Type.String({ maxLength: 200, description: 'why, for people' }))),
}, { additionalProperties: false })

export const LabelBody = Type.Object({
  label: NullableInput(Type.String({ maxLength: 100, description: 'for people; null clears it' })),
}, { additionalProperties: false })
