import { randomUUID } from 'node:crypto'
import Fastify, { errorCodes, LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { EventFeed } from '../pool/events.js'
import type { TokenPool } from '../pool/pool.js'
import errors from './plugins/errors.js'
import dashboard from './plugins/dashboard.js'
import security, { checkQueryString, frameworkErrors } from './plugins/security.js'
import metrics from './plugins/metrics.js'
import openapi from './plugins/swagger.js'
import { ErrorBody } from './schemas/common.js'
import eventRoutes from './routes/events.js'
import healthRoutes from './routes/health.js'
import tokenRoutes from './routes/tokens.js'
import leaseRoutes from './routes/leases.js'
import poolRoutes from './routes/pools.js'
import tokenHealthRoutes from './routes/token-health.js'
import methods from './plugins/methods.js'
import { validatorCompiler } from './validation.js'
import { Access } from './plugins/auth.js'

export interface AppDeps {
  pool: TokenPool
  adminToken?: string
  logger?: FastifyBaseLogger
  /** requests per minute per client IP; 0 or absent: no limit */
  rateLimitPerMinute?: number
  /** the process's cross-node event feed; absent: the app makes its own */
  events?: EventFeed
}

/** One log line per request, with its id; nothing about the user beyond ids in the URL. */
class OneLinePerRequest extends LogController {
  override incomingRequest (): void {}
  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }
    if (error) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request')
  }
}

// A user id is 36 bytes; anything near this limit is not a request we serve.
const BODY_LIMIT = 64 * 1024

/** The HTTP app, without listening: tests drive it with inject(), `serve` adds the socket. */
export async function buildApp ({ pool, adminToken, logger, rateLimitPerMinute, events }: AppDeps) {
  const app = Fastify({
    ...(logger === undefined ? { logger: false } : { loggerInstance: logger }),
    bodyLimit: BODY_LIMIT,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    logController: new OneLinePerRequest(),
    frameworkErrors,
    // Path parameters are checked by their schemas (a pool name is at most 63 characters):
    // this only keeps a longer one from being refused before that check could name it.
    routerOptions: { maxParamLength: 1000 },
    // While draining, a request already on an open connection is served (then the connection
    // closes) rather than answered with Fastify's own 503 body; see plugins/security.ts.
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)

  // Only JSON bodies: text/plain and the rest get 415. An empty body counts as no body.
  app.removeAllContentTypeParsers()
  // A "__proto__" or "constructor" key is valid JSON: dropped, not a 400 that says the body isn't JSON.
  const parseJson = app.getDefaultJsonParser('remove', 'remove')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined)
    else parseJson(request, body as string, done)
  })
  // No body at all is no body whatever its Content-Type (some clients send one by default
  // on an empty POST); a body of any other type is 415, refused before it is read.
  app.addContentTypeParser('*', (request, _payload, done) => {
    const h = request.headers
    if (h['transfer-encoding'] === undefined && (h['content-length'] ?? '0') === '0') done(null, undefined)
    else done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(h['content-type']), undefined)
  })

  // No body at all reads as an empty object, so the answer names the missing field.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body !== undefined) request.body = {}
  })

  app.addSchema(ErrorBody)
  await app.register(errors)
  await app.register(methods)
  await app.register(security, { rateLimitPerMinute })
  // After security's hooks: its answer has the security headers and counts against the rate limit.
  app.addHook('onRequest', checkQueryString)
  // Before the routes: OpenAPI and metrics see each route as it is added.
  await app.register(openapi)
  await app.register(metrics, { pool })

  app.addHook('onSend', async (request, reply) => { reply.header('x-request-id', request.id) })

  const access = new Access(adminToken)
  await app.register(healthRoutes, { pool })
  await app.register(poolRoutes, { pool, access })
  await app.register(leaseRoutes, { pool, access })
  await app.register(tokenHealthRoutes, { pool, access })
  await app.register(tokenRoutes, { pool, access })
  await app.register(eventRoutes, { pool, access, feed: events })
  await app.register(dashboard)
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
