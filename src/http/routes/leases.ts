import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import { parseId } from '../../domain/ids.js'
import type { TokenPool } from '../../pool/pool.js'
import type { Access } from '../plugins/auth.js'
import * as present from '../present.js'
import { errors, IgnoredBody, UserBody } from '../schemas/common.js'
import { PoolNameParams } from '../schemas/pools.js'
import { AllocateBody, Cleared, EndedLease, Lease } from '../schemas/tokens.js'
import { answerAllocate } from './allocate-answer.js'
import { POOL_PREFIX, poolOf, scopeOf, TokenInPoolParams, TokenParams, tokenIdOf } from './scopes.js'

const tags = ['leases']

/** A lease's life: allocate, release, renew; and the admin's clear. Each under a pool and in its v0.1 form. */
const leaseRoutes: FastifyPluginAsyncTypebox<{ pool: TokenPool, access: Access }> = async (app, { pool, access }) => {
  for (const [prefix, params] of [[POOL_PREFIX, PoolNameParams], ['/api', undefined]] as const) {
    const inPool = params === undefined ? 'the default pool' : 'the pool'
    const allocate = {
      schema: {
        tags,
        summary: `Lease the least-used free token of ${inPool} (or get back the lease the user holds there)`,
        description: 'With wait_seconds, a request that finds no token free waits in the pool\'s queue, first come first served across every node, ' +
          'and is answered when a token frees or with 409 pool_exhausted when its time is up. Asked with Accept: text/event-stream, a request ' +
          'that queues is answered 200 with a stream instead: a `queued` event (position, waiting, estimated_grant_at) on entry and whenever ' +
          'one of them changes, then one `allocated` event (the lease) or one `error` event (the error body); then the stream ends. ' +
          'A request that does not queue answers plain JSON whatever its Accept.',
        ...(params === undefined ? {} : { params }),
        body: AllocateBody,
        response: {
          200: {
            description: 'the lease; or, for a request that queued with Accept: text/event-stream, the stream of its queued events and its answer',
            content: {
              'application/json': { schema: Type.Object({ data: Lease }) },
              'text/event-stream': { schema: Type.String({ description: 'event: queued (data: QueueState), then event: allocated (data: the lease) or event: error (data: the error body)' }) },
            },
          },
          ...errors(400, 404, 409, 413, 415, 422, 429, 503),
        },
      },
    }
    const handler = async (request: FastifyRequest<{ Body: Static<typeof AllocateBody> }>, reply: FastifyReply) => {
      const userId = parseId(request.body.user_id, 'user_id')
      return await answerAllocate(pool, request, reply, {
        pool: poolOf(request.params),
        userId,
        waitSeconds: request.body.wait_seconds ?? 0,
        viewer: access.viewer(request, userId),
      })
    }
    app.post(`${prefix}/tokens/allocate`, allocate, handler)
    app.post(`${prefix}/tokens/activate`, { schema: { ...allocate.schema, summary: 'Alias of allocate' } }, handler)

    app.post(`${prefix}/tokens/clear`, {
      schema: {
        tags,
        summary: `End every active lease of ${inPool} now (admin)`,
        security: [{ bearer: [] }],
        ...(params === undefined ? {} : { params }),
        body: IgnoredBody,
        response: { 200: Cleared, ...errors(400, 401, 404, 413, 415, 422, 429, 503) },
      },
      preValidation: access.requireAdmin,
    }, async (request) => ({ data: { cleared_tokens: await pool.clear(poolOf(request.params)) } }))
  }

  for (const [prefix, params] of [[POOL_PREFIX, TokenInPoolParams], ['/api', TokenParams]] as const) {
    app.post(`${prefix}/tokens/:token_id/release`, {
      schema: {
        tags,
        summary: 'Give a token back before its lease ends',
        params,
        body: UserBody,
        response: { 200: Type.Object({ data: EndedLease }), ...errors(400, 404, 409, 413, 415, 422, 429, 503) },
      },
    }, async (request) => {
      const userId = parseId(request.body.user_id, 'user_id')
      const ended = await pool.release(tokenIdOf(request.params), userId, scopeOf(request.params))
      return { data: present.endedLease(ended, access.viewer(request, userId)) }
    })

    app.post(`${prefix}/tokens/:token_id/renew`, {
      schema: {
        tags,
        summary: 'Extend the lease by one TTL, never past renewable_until (the holder)',
        params,
        body: UserBody,
        response: { 200: Type.Object({ data: Lease }), ...errors(400, 404, 409, 413, 415, 422, 429, 503) },
      },
    }, async (request) => {
      const userId = parseId(request.body.user_id, 'user_id')
      const lease = await pool.renew(tokenIdOf(request.params), userId, scopeOf(request.params))
      return { data: present.lease(lease, access.viewer(request, userId)) }
    })
  }
}

export default leaseRoutes
