import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TokenPool } from '../../pool/pool.js'
import { sendError } from '../plugins/errors.js'
import { PoolError } from '../../domain/errors.js'
import { errors } from '../schemas/common.js'

const Status = Type.Object({ status: Type.String() })

const healthRoutes: FastifyPluginAsyncTypebox<{ pool: TokenPool }> = async (app, { pool }) => {
  app.get('/healthz', {
    schema: { tags: ['operations'], summary: 'The process is up', response: { 200: Status } },
    config: { rateLimit: false },
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    schema: { tags: ['operations'], summary: 'The process can reach its database', response: { 200: Status, ...errors(503) } },
    config: { rateLimit: false },
  }, async (_request, reply) => {
    if (await pool.ready()) return { status: 'ready' }
    return sendError(reply, new PoolError('unavailable', 'The database cannot be reached.', { retryAfterSeconds: 1 }))
  })
}

export default healthRoutes
