import { Type, type Static } from 'typebox'
import { EXHAUSTION_POLICIES, MIN_DURATION_SECONDS, MIN_WINDOW_HOURS, POOL_NAME_PATTERN } from '../../domain/types.js'
import { NullableInput, StringEnum } from './common.js'
import { PoolCounts } from './tokens.js'

const settings = {
  size: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'tokens in the pool' }),
  lease_ttl_seconds: Type.Number({ minimum: MIN_DURATION_SECONDS, maximum: 86_400, description: 'length of a new lease and of each renewal, 1 ms to 1 day (fractions allowed)' }),
  lease_max_seconds: Type.Number({ minimum: MIN_DURATION_SECONDS, maximum: 86_400, description: 'the hard cap from started_at; at least lease_ttl_seconds (default: equal to it)' }),
  usage_window_hours: Type.Number({ minimum: MIN_WINDOW_HOURS, maximum: 8784, description: 'the usage window, 1 ms to 366 days (fractions allowed)' }),
  on_exhausted: StringEnum(EXHAUSTION_POLICIES, 'when no token is free: evict the oldest lease, or refuse'),
  max_wait_seconds: Type.Number({ minimum: 0, maximum: 300, description: 'the longest wait_seconds an allocation (or a cooldown with reallocate) may ask for; more is a 422, never capped. 0: no waiting' }),
  cooldown_max_seconds: Type.Number({ minimum: 1, maximum: 604_800, description: 'the longest cooldown, 1 s to 7 days' }),
  user_quota: NullableInput(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'new leases one user may take per window; null: no limit' })),
}

export const PoolNameParams = Type.Object({
  pool: Type.String({ pattern: POOL_NAME_PATTERN, description: 'a pool name: 1–63 of a-z, 0-9, _ and -, starting with a letter or digit' }),
})

export const Pool = Type.Object({ name: Type.String(), ...settings, ...PoolCounts })
export type PoolJson = Static<typeof Pool>

const optional = Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, Type.Optional(v)])) as {
  [K in keyof typeof settings]: ReturnType<typeof Type.Optional<(typeof settings)[K]>>
}

export const CreatePoolBody = Type.Object({
  name: Type.String({ pattern: POOL_NAME_PATTERN, description: 'the new pool\'s name' }),
  ...optional,
}, { additionalProperties: false })

export const UpdatePoolBody = Type.Object({
  // Allowed so that a pool's own view can be sent back; a pool is never renamed.
  name: Type.Optional(Type.String({ pattern: POOL_NAME_PATTERN, description: 'the pool\'s own name, if given: a pool can\'t be renamed' })),
  ...optional,
}, { additionalProperties: false, minProperties: 1 })

export const DeleteQuery = Type.Object({
  force: Type.Optional(Type.Boolean({ default: false, description: 'end active leases (reason cleared) instead of refusing with 409 pool_busy' })),
})
