import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchema, FastifySchemaCompiler } from 'fastify'

// Fastify's own Ajv settings, but one Ajv coerces and the other does not.
const base: Options = { useDefaults: true, addUsedSchema: false, allErrors: false }

/** Query strings and paths are text: "limit=5" is the number 5. */
const textParts = addFormats.default(new Ajv({ ...base, removeAdditional: true, coerceTypes: 'array' }))
/**
 * A JSON body says its own types: "5", true or ["…"] where a number or an id belongs is a
 * 422, never read as one. A body whose schema lists every field (a pool's settings, a
 * cooldown, …) refuses any other, so that a typo ("sise": 5) is a 422, not a silent default.
 */
const jsonBodies = addFormats.default(new Ajv({ ...base, removeAdditional: false, coerceTypes: false }))

export const validatorCompiler: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) =>
  httpPart === 'body' ? jsonBodies.compile(schema as object) : digitsOnly(schema, textParts.compile(schema as object))

const DIGITS = /^-?[0-9]+$/

/**
 * Ajv coerces text with Number(), so "1e3", "0x10" and " 10" would pass as integers: an
 * integer in a query or path is written in decimal digits, or it is a 422 naming it.
 */
function digitsOnly (schema: unknown, validate: ValidateFunction): ValidateFunction | ((data: unknown) => boolean) {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {}
  const integers = Object.keys(properties).filter((k) => properties[k]?.type === 'integer')
  if (integers.length === 0) return validate
  const checked = (data: unknown): boolean => {
    const values = data as Record<string, unknown> | null
    const bad = integers.find((k) => typeof values?.[k] === 'string' && !DIGITS.test(values[k]))
    checked.errors = bad === undefined ? null : [notAnInteger(bad)]
    if (bad !== undefined) return false
    const ok = validate(data) as boolean
    checked.errors = validate.errors
    return ok
  }
  checked.errors = null as ErrorObject[] | null | undefined
  return checked
}

const notAnInteger = (field: string): ErrorObject => ({
  instancePath: `/${field}`,
  schemaPath: `#/properties/${field}/type`,
  keyword: 'type',
  params: { type: 'integer' },
  message: 'must be integer',
})
