import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { PoolError } from '../../domain/errors.js'
import { sendError } from './errors.js'

export interface SecurityOptions {
  /** requests per minute per client IP; 0 or absent turns rate limiting off */
  rateLimitPerMinute?: number
}

/** ms a client may take to send its headers, and its whole request: a slow sender can't hold a socket. */
export const HEADERS_TIMEOUT_MS = 10_000
export const REQUEST_TIMEOUT_MS = 30_000

/** Security headers, rate limiting and socket timeouts; registered right after the error handler. */
export default fp(async function security (app: FastifyInstance, { rateLimitPerMinute = 0 }: SecurityOptions) {
  await app.register(helmet, {
    // The dashboard and Swagger UI come from this same origin: their own scripts, styles and
    // images load; nothing from elsewhere, no inline script. Swagger UI sets inline styles.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        // The service speaks plain HTTP unless a proxy adds TLS: don't send browsers to https.
        upgradeInsecureRequests: null,
      },
    },
    strictTransportSecurity: false,
  })

  if (rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      max: rateLimitPerMinute,
      timeWindow: 60_000,
      errorResponseBuilder: (_request, context) => {
        const retryAfterSeconds = Math.max(1, Math.ceil(context.ttl / 1000))
        return new PoolError('rate_limited', `More than ${context.max} requests a minute; try again in ${retryAfterSeconds} s.`, {
          retryAfterSeconds, details: { limit_per_minute: context.max, retry_after_seconds: retryAfterSeconds },
        })
      },
    })
  }

  app.server.headersTimeout = HEADERS_TIMEOUT_MS
  app.server.requestTimeout = REQUEST_TIMEOUT_MS

  // Draining: server.close() drops only the keep-alive connections idle at that moment; one
  // busy then would idle on for keepAliveTimeout and hold the exit. Answers sent once closing
  // has begun end their connection instead.
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onSend', async (_request, reply) => { if (closing) reply.header('connection', 'close') })
}, { name: 'security', dependencies: ['errors'] })

/**
 * Fastify's own early failures, which skip the error handler (a malformed %-escape, a path
 * parameter over maxParamLength): a malformed path parameter is a 422 in the contract.
 * Passed to Fastify as its `frameworkErrors` option.
 */
export function frameworkErrors (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  sendError(reply, new PoolError('validation_failed', 'The URL is malformed or one of its parameters is too long.', {
    details: { field: 'url', reason: error.code },
  }))
}
