import rateLimit from '@fastify/rate-limit'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import type { Socket } from 'node:net'
import { PoolError } from '../../domain/errors.js'
import { sendError } from './errors.js'

export interface SecurityOptions {
  /** requests per minute per client IP; 0 or absent turns rate limiting off */
  rateLimitPerMinute?: number
}

/** ms a client may take to send its headers, and its whole request: a slow sender can't hold a socket. */
export const HEADERS_TIMEOUT_MS = 10_000
export const REQUEST_TIMEOUT_MS = 30_000
const FIRST_REQUEST_GRACE_MS = 1000

/** Security headers, rate limiting, socket timeouts and a prompt drain; registered right after the error handler. */
export default fp(async function security (app: FastifyInstance, { rateLimitPerMinute = 0 }: SecurityOptions) {
  drainOnClose(app)

  // Built once: @fastify/helmet builds helmet's middleware again for every request, which
  // measured 9% of a token read's CPU.
  const securityHeaders = helmet({
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
  app.addHook('onRequest', (request, reply, done) => { securityHeaders(request.raw, reply.raw, (err) => { done(err as Error | undefined) }) })

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
}, { name: 'security', dependencies: ['errors'] })

/**
 * A prompt drain. server.close() drops only the keep-alive connections idle at that moment:
 * one busy then, or one opened that never sent a request, would hold the exit for its
 * timeout. So once closing, answers end their connection, and every socket is closed as
 * soon as it has no request in flight (one that has not sent its first request yet gets
 * FIRST_REQUEST_GRACE_MS to do so: its request may be on the way).
 */
function drainOnClose (app: FastifyInstance): void {
  const sockets = new Set<Socket>()
  const busy = new Map<Socket, number>()
  let closing = false
  const closeIfIdle = (socket: Socket) => {
    if (!closing || (busy.get(socket) ?? 0) > 0) return
    if (busy.has(socket)) socket.destroy()
    else setTimeout(() => { if (!busy.has(socket)) socket.destroy() }, FIRST_REQUEST_GRACE_MS).unref()
  }
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => { sockets.delete(socket); busy.delete(socket) })
  })
  app.addHook('onRequest', async (request) => {
    const socket = request.raw.socket
    busy.set(socket, (busy.get(socket) ?? 0) + 1)
  })
  app.addHook('onResponse', async (request) => {
    const socket = request.raw.socket
    busy.set(socket, Math.max(0, (busy.get(socket) ?? 1) - 1))
    closeIfIdle(socket)
  })
  app.addHook('preClose', async () => {
    closing = true
    for (const socket of sockets) closeIfIdle(socket)
  })
  app.addHook('onSend', async (_request, reply) => { if (closing) reply.header('connection', 'close') })
}

/**
 * Fastify's own early failures, which skip the error handler (a malformed %-escape, a path
 * parameter over maxParamLength): a malformed path parameter is a 422 in the contract.
 * Passed to Fastify as its `frameworkErrors` option.
 */
export function frameworkErrors (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const message = error.code === 'FST_ERR_BAD_URL' ? BAD_ESCAPE : 'has a parameter that is too long'
  sendError(reply, malformedUrl('params', message))
}

const BAD_ESCAPE = 'is malformed (a bad %-escape)'

/**
 * The query string's parser reads a bad %-escape as text ("limit=5&x=%ZZ" would pass), so an
 * onRequest hook checks it: the same 422 naming `url` as a bad escape in the path.
 */
export async function checkQueryString (request: FastifyRequest): Promise<void> {
  const url = request.raw.url ?? ''
  const start = url.indexOf('?')
  if (start < 0 || !url.includes('%', start)) return
  try {
    decodeURIComponent(url.slice(start + 1))
  } catch {
    throw malformedUrl('querystring', BAD_ESCAPE)
  }
}

const malformedUrl = (location: string, message: string): PoolError => new PoolError('validation_failed', `The URL ${message}.`, {
  details: { field: 'url', location, issues: [{ field: 'url', message }] },
})
