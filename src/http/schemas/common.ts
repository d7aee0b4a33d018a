import { Type, type Static, type TSchema } from 'typebox'
import { UUID_PATTERN } from '../../domain/ids.js'
import { RELEASE_REASONS } from '../../domain/types.js'

/** A closed set of strings as a plain JSON Schema enum (clearer errors and OpenAPI than anyOf of consts). */
export function StringEnum<T extends string> (values: readonly T[], description?: string) {
  return Type.Unsafe<T>(Type.String({ enum: [...values], ...(description === undefined ? {} : { description }) }))
}

// ajv's "uuid" format also takes a "urn:uuid:" prefix; the pattern keeps ids plain.
export const Uuid = (description: string) => Type.String({
  format: 'uuid',
  pattern: UUID_PATTERN,
  description,
  examples: ['6f1c1a4e-3d2b-4f7a-9a53-2c1d0e9b8a71'],
})

export const Timestamp = (description: string) => Type.String({ format: 'date-time', description, examples: ['2026-11-23T14:30:00.000Z'] })
export const NullableTimestamp = (description: string) => Type.Union([Timestamp(description), Type.Null()])
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

/**
 * A request field that may be null. Not an anyOf as Nullable: with coerceTypes, Ajv tries the
 * first branch and coerces null there (user_quota: null became 0, label: null became "").
 * With one type array Ajv coerces only when no listed type matches, so null stays null.
 */
export const NullableInput = <T extends TSchema>(schema: T) =>
  Type.Unsafe<Static<T> | null>({ ...schema, type: [(schema as { type?: string }).type, 'null'] })

export const ReleaseReason = StringEnum(RELEASE_REASONS, 'why the lease ended')

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'machine-readable, e.g. validation_failed' }),
    message: Type.String({ description: 'for people' }),
    details: Type.Unknown({ description: '{field, location, issues} on 422; null where there is nothing to add' }),
  }),
}, { $id: 'Error', description: 'Every failure has this shape.' })

export const UserBody = Type.Object({
  user_id: Uuid('the user asking'),
}, { description: 'who is asking' })

export const TokenIdParams = Type.Object({ token_id: Uuid('a token of the pool') })

/**
 * The body of a route that takes no fields. The server parses any body sent (400, 413, 415) and
 * ignores it: an empty schema documents that without refusing what was accepted before.
 */
export const IgnoredBody = Type.Unknown({ description: 'nothing: any JSON sent is ignored' })

/** The error answers a route can give, for OpenAPI; each is the Error shape. */
export const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, Type.Ref('Error')]))

export const PoolName = (description: string) => Type.String({ description, examples: ['default'] })

export const Holder = Nullable(Type.String({ pattern: '^[0-9a-f]{12}$', description: 'a stable fingerprint of the holder: the first 12 hex digits of the SHA-256 of its user id' }))
