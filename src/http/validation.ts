import { Ajv, type Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchema, FastifySchemaCompiler } from 'fastify'

// Fastify's own Ajv settings, but one Ajv coerces and the other does not.
const base: Options = { useDefaults: true, removeAdditional: true, addUsedSchema: false, allErrors: false }

/** Query strings and paths are text: "limit=5" is the number 5. */
const textParts = addFormats.default(new Ajv({ ...base, coerceTypes: 'array' }))
/** A JSON body says its own types: "5", true or ["…"] where a number or an id belongs is a 422, never read as one. */
const jsonBodies = addFormats.default(new Ajv({ ...base, coerceTypes: false }))

export const validatorCompiler: FastifySchemaCompiler<FastifySchema> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? jsonBodies : textParts).compile(schema as object)
