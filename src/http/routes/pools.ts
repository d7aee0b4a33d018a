import { PoolError } from '../../domain/errors.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TokenPool } from '../../pool/pool.js'
import type { Access } from '../plugins/auth.js'
import * as present from '../present.js'
import { errors, IgnoredBody } from '../schemas/common.js'
import { CreatePoolBody, DeleteQuery, Pool, PoolNameParams, UpdatePoolBody } from '../schemas/pools.js'

const tags = ['pools']
const admin = [{ bearer: [] }]

/** The named pools: listing, and the admin's create, change and delete. */
const poolRoutes: FastifyPluginAsyncTypebox<{ pool: TokenPool, access: Access }> = async (app, { pool, access }) => {
  app.get('/api/pools', {
    schema: { tags, summary: 'Every pool, with its settings and counts', response: { 200: Type.Object({ data: Type.Array(Pool) }), ...errors(429, 503) } },
  }, async () => ({ data: (await pool.listPools()).map(present.pool) }))

  app.get('/api/pools/:pool', {
    schema: { tags, summary: 'One pool, with its settings and counts', params: PoolNameParams, response: { 200: Type.Object({ data: Pool }), ...errors(404, 422, 429, 503) } },
  }, async (request) => ({ data: present.pool(await pool.getPool(request.params.pool)) }))

  app.post('/api/pools', {
    schema: {
      tags,
      summary: 'Create a pool (admin)',
      security: admin,
      body: CreatePoolBody,
      response: { 201: Type.Object({ data: Pool }), ...errors(400, 401, 409, 413, 415, 422, 429, 503) },
    },
    preValidation: access.requireAdmin,
  }, async (request, reply) => {
    const { name, ...settings } = request.body
    const created = await pool.createPool(name, settings)
    return await reply.code(201).header('location', `/api/pools/${created.name}`).send({ data: present.pool(created) })
  })

  app.patch('/api/pools/:pool', {
    schema: {
      tags,
      summary: "Change a pool's settings (admin); a size change grows or retires tokens",
      security: admin,
      params: PoolNameParams,
      body: UpdatePoolBody,
      response: { 200: Type.Object({ data: Pool }), ...errors(400, 401, 404, 409, 413, 415, 422, 429, 503) },
    },
    preValidation: access.requireAdmin,
  }, async (request) => {
    const { name, ...changes } = request.body
    if (name !== undefined && name !== request.params.pool) {
      throw new PoolError('validation_failed', 'name can\'t be changed: a pool is never renamed', {
        details: { field: 'name', location: 'body', issues: [{ field: 'name', message: 'can\'t be changed: a pool is never renamed' }] },
      })
    }
    return { data: present.pool(await pool.updatePool(request.params.pool, changes)) }
  })

  app.delete('/api/pools/:pool', {
    schema: {
      tags,
      summary: 'Delete a pool (admin): its tokens retire, their histories stay readable',
      security: admin,
      params: PoolNameParams,
      querystring: DeleteQuery,
      body: IgnoredBody,
      response: { 200: Type.Object({ data: Type.Object({ name: Type.String(), deleted: Type.Boolean() }) }), ...errors(400, 401, 404, 409, 413, 415, 422, 429, 503) },
    },
    preValidation: access.requireAdmin,
  }, async (request) => {
    await pool.deletePool(request.params.pool, request.query.force ?? false)
    return { data: { name: request.params.pool, deleted: true } }
  })
}

export default poolRoutes
