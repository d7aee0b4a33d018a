import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { PoolError, type ErrorCode } from '../../domain/errors.js'
import { translateDbError } from '../../store/sqlstate.js'

// Fastify's own failures, named in the contract's vocabulary.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_json',
}

export function sendError (reply: FastifyReply, err: PoolError): FastifyReply {
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds))
  return reply.code(err.status).send({ error: { code: err.code, message: err.message, details: err.details } })
}

/** One error handler: every failure leaves in the contract's shape; unexpected ones hide their text. */
export default fp(async function errors (app: FastifyInstance) {
  app.setErrorHandler((raw: FastifyError, request, reply) => {
    const err = toPoolError(raw)
    if (err.status >= 500) request.log.error({ err: raw }, 'request failed')
    return sendError(reply, err)
  })

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new PoolError('not_found', `No route ${request.method} ${request.url.split('?')[0] ?? ''}`)))
}, { name: 'errors' })

function toPoolError (raw: FastifyError): PoolError {
  if (raw instanceof PoolError) return raw
  if (raw.validation !== undefined) {
    const issues = raw.validation.map((v) => ({
      field: fieldOf(v.instancePath, v.params as Record<string, unknown>),
      message: v.message ?? 'is invalid',
    }))
    const first = issues[0]?.field ?? raw.validationContext ?? 'request'
    return new PoolError('validation_failed', `${first} ${raw.validation[0]?.message ?? 'is invalid'}`, {
      details: { field: first, location: raw.validationContext, issues },
    })
  }
  const named = raw.code === undefined ? undefined : FASTIFY_CODES[raw.code]
  if (named !== undefined) return new PoolError(named, raw.message)
  if (raw.statusCode === 429) return new PoolError('rate_limited', 'Too many requests; slow down.', { retryAfterSeconds: 1 })
  const translated = translateDbError(raw)
  if (translated instanceof PoolError) return translated
  if (raw.statusCode !== undefined && raw.statusCode >= 400 && raw.statusCode < 500) {
    return new PoolError('validation_failed', raw.message)
  }
  return new PoolError('internal_error', 'Something went wrong on our side.')
}

function fieldOf (instancePath: string, params: Record<string, unknown>): string {
  const path = instancePath.split('/').filter(Boolean)
  if (typeof params.missingProperty === 'string') path.push(params.missingProperty)
  if (typeof params.additionalProperty === 'string') path.push(params.additionalProperty)
  return path.join('.') || '(body)'
}
