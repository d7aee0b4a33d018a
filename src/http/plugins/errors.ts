import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { PoolError, type ErrorCode } from '../../domain/errors.js'
import { UUID_PATTERN } from '../../domain/ids.js'
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
  // RFC 9110: a 401 names the scheme that would work.
  if (err.code === 'unauthorized') reply.header('www-authenticate', 'Bearer')
  return reply.code(err.status).send(envelope(err))
}

/** The failure body: {"error": {code, message, details}}. */
export function envelope (err: PoolError): { error: { code: string, message: string, details: unknown } } {
  return { error: { code: err.code, message: err.message, details: err.details } }
}

/** One error handler: every failure leaves in the contract's shape; unexpected ones hide their text. */
export default fp(async function errors (app: FastifyInstance) {
  app.setErrorHandler((raw: FastifyError, request, reply) => {
    const err = toPoolError(raw, request.method === 'GET' || request.method === 'HEAD')
    if (err.status >= 500) request.log.error({ err: raw }, 'request failed')
    return sendError(reply, err)
  })

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? ''
    // The `methods` plugin knows the routes; without it every miss is a 404.
    const allowedFor = (request.server as { methodsAllowedFor?: (path: string) => string[] }).methodsAllowedFor
    const allowed = allowedFor?.(path) ?? []
    // A method the path does list but no route took (a constraint, a param regex) stays a 404.
    if (allowed.length > 0 && !allowed.includes(request.method === 'HEAD' ? 'GET' : request.method)) {
      return sendMethodNotAllowed(reply, request.method, path, allowed)
    }
    return sendError(reply, new PoolError('not_found', `No route ${request.method} ${path}`))
  })
}, { name: 'errors' })

/** 405 with the Allow header RFC 9110 requires. */
export function sendMethodNotAllowed (reply: FastifyReply, method: string, path: string, allowed: string[]): FastifyReply {
  reply.header('allow', allowed.join(', '))
  return sendError(reply, new PoolError('method_not_allowed', `${method} is not allowed on ${path}; use ${allowed.join(' or ')}.`))
}

/** Any failure as the contract names it. */
export function toPoolError (raw: FastifyError, read = false): PoolError {
  if (raw instanceof PoolError) return raw
  if (raw.validation !== undefined) {
    const issues = raw.validation.map((v) => ({
      field: fieldOf(v.instancePath, v.params as Record<string, unknown>),
      message: messageOf(v.keyword, v.params as Record<string, unknown>, v.message),
    }))
    const first = issues[0] ?? { field: 'body', message: 'is invalid' }
    return new PoolError('validation_failed', `${first.field} ${first.message}`, {
      details: { field: first.field, location: raw.validationContext, issues },
    })
  }
  const named = raw.code === undefined ? undefined : FASTIFY_CODES[raw.code]
  if (named !== undefined) return new PoolError(named, MESSAGES[named] ?? raw.message)
  if (raw.statusCode === 429) return new PoolError('rate_limited', 'Too many requests; slow down.', { retryAfterSeconds: 1 })
  const translated = translateDbError(raw, read)
  if (translated instanceof PoolError) return translated
  if (raw.statusCode !== undefined && raw.statusCode >= 400 && raw.statusCode < 500) {
    return new PoolError('validation_failed', raw.message)
  }
  return new PoolError('internal_error', 'Something went wrong on our side.')
}

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  invalid_json: 'The body is not valid JSON.',
  unsupported_media_type: 'Send the body as JSON with Content-Type: application/json.',
  payload_too_large: 'The body is larger than this service accepts.',
}

function messageOf (keyword: string, params: Record<string, unknown>, fallback: string | undefined): string {
  if (keyword === 'required') return 'is required'
  if ((keyword === 'pattern' && params.pattern === UUID_PATTERN) || (keyword === 'format' && params.format === 'uuid')) return 'must be a UUID'
  if (keyword === 'enum' && Array.isArray(params.allowedValues)) return `must be one of: ${params.allowedValues.join(', ')}`
  if (keyword === 'type' && params.type === 'object') return 'must be a JSON object'
  if (keyword === 'additionalProperties') return 'is not a field of this request'
  const comparison = COMPARISONS[keyword]
  if (comparison !== undefined && typeof params.limit === 'number') return `must be ${comparison} ${PLAIN.format(params.limit)}`
  return fallback ?? 'is invalid'
}

const COMPARISONS: Record<string, string> = { minimum: '>=', maximum: '<=', exclusiveMinimum: '>', exclusiveMaximum: '<' }
// A limit as a person writes it: usage_window_hours' 1 ms is 0.000000278 hours, not 2.7777777777777776e-7.
const PLAIN = new Intl.NumberFormat('en-US', { maximumFractionDigits: 9, useGrouping: false })

function fieldOf (instancePath: string, params: Record<string, unknown>): string {
  const path = instancePath.split('/').filter(Boolean)
  if (typeof params.missingProperty === 'string') path.push(params.missingProperty)
  if (typeof params.additionalProperty === 'string') path.push(params.additionalProperty)
  return path.join('.') || 'body'
}
