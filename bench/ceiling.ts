import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { UserBody } from '../src/http/schemas/common.js'
import { Lease } from '../src/http/schemas/tokens.js'

/**
 * The ceiling: a Fastify route with allocate's request and response schemas and no
 * database, so the same validation and serialisation cost, and nothing else.
 */
const app = Fastify({ logger: false })
const tokenId = randomUUID()
let leaseId = 0
app.post<{ Body: { user_id: string } }>('/api/tokens/allocate', {
  schema: { body: UserBody, response: { 200: Type.Object({ data: Lease }) } },
}, async (request) => {
  const startedAt = new Date()
  return {
    data: {
      pool: 'default',
      token_id: tokenId,
      user_id: request.body.user_id.toLowerCase(),
      lease_id: ++leaseId,
      started_at: startedAt.toISOString(),
      expires_at: new Date(startedAt.getTime() + 120_000).toISOString(),
      expires_in_seconds: 120,
      renewable_until: new Date(startedAt.getTime() + 120_000).toISOString(),
      evicted_user_id: null,
    },
  }
})
app.get('/readyz', async () => ({ data: { ready: true } }))

await app.listen({ port: Number(process.env.PORT ?? 4790), host: '127.0.0.1' })
process.on('SIGTERM', () => { app.close().finally(() => process.exit(0)) })
