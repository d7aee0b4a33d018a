import { Ajv, type Options } from 'ajv'
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
  (httpPart === 'body' ? jsonBodies : textParts).compile(schema as object)
