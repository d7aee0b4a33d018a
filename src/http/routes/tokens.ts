import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TokenPool } from '../../pool/pool.js'
import { requireAdmin } from '../plugins/auth.js'
import * as present from '../present.js'
import { errors, TokenIdParams, UserBody } from '../schemas/common.js'
import { Cleared, EndedLease, History, HistoryQuery, Lease, ListQuery, Stats, TokenDetail, TokenList } from '../schemas/tokens.js'

export interface TokenRoutesOptions {
  pool: TokenPool
  adminToken: string | undefined
}

const tags = ['tokens']

const tokenRoutes: FastifyPluginAsyncTypebox<TokenRoutesOptions> = async (app, { pool, adminToken }) => {
  const allocate = {
    schema: {
      tags,
      summary: 'Lease the least-used free token (or get back the lease the user already holds)',
      body: UserBody,
      response: { 200: Type.Object({ data: Lease }), ...errors(400, 409, 413, 415, 422, 429, 503) },
    },
  }
  const allocateHandler = async (request: { body: { user_id: string } }) =>
    ({ data: present.lease(await pool.allocate(request.body.user_id.toLowerCase())) })
  app.post('/api/tokens/allocate', allocate, allocateHandler)
  app.post('/api/tokens/activate', { schema: { ...allocate.schema, summary: 'Alias of allocate' } }, allocateHandler)

  app.post('/api/tokens/:token_id/release', {
    schema: {
      tags,
      summary: 'Give a token back before its lease ends',
      params: TokenIdParams,
      body: UserBody,
      response: { 200: Type.Object({ data: EndedLease }), ...errors(400, 404, 409, 413, 415, 422, 429, 503) },
    },
  }, async (request) => ({
    data: present.endedLease(await pool.release(request.params.token_id.toLowerCase(), request.body.user_id.toLowerCase())),
  }))

  app.post('/api/tokens/clear', {
    schema: {
      tags,
      summary: 'End every active lease now (admin)',
      security: [{ bearer: [] }],
      response: { 200: Cleared, ...errors(401, 413, 415, 429, 503) },
    },
    preHandler: requireAdmin(adminToken),
  }, async () => ({ data: { cleared_tokens: await pool.clear() } }))

  app.get('/api/tokens', {
    schema: {
      tags,
      summary: 'Every token of the pool, in creation order',
      querystring: ListQuery,
      response: { 200: TokenList, ...errors(422, 429, 503) },
    },
  }, async (request) => {
    const { tokens, counts } = await pool.list(request.query.status)
    return {
      data: tokens.map(present.tokenSummary),
      meta: { total: counts.total, active: counts.active, available: counts.available, ...present.window(counts) },
    }
  })

  app.get('/api/tokens/:token_id', {
    schema: {
      tags,
      summary: 'One token and its active lease',
      params: TokenIdParams,
      response: { 200: Type.Object({ data: TokenDetail }), ...errors(404, 422, 429, 503) },
    },
  }, async (request) => ({ data: present.tokenDetail(await pool.get(request.params.token_id.toLowerCase())) }))

  app.get('/api/tokens/:token_id/history', {
    schema: {
      tags,
      summary: "A token's usages, newest first, paged",
      params: TokenIdParams,
      querystring: HistoryQuery,
      response: { 200: History, ...errors(404, 422, 429, 503) },
    },
  }, async (request) => {
    const tokenId = request.params.token_id.toLowerCase()
    const page = await pool.history(tokenId, request.query.limit ?? 50, request.query.cursor)
    return { data: { token_id: tokenId, usages: page.usages.map(present.usage) }, meta: { next_cursor: page.nextCursor } }
  })

  app.get('/api/stats', {
    schema: {
      tags: ['stats'],
      summary: 'Usage statistics of the current window',
      response: { 200: Type.Object({ data: Stats }), ...errors(429, 503) },
    },
  }, async () => ({ data: present.stats(await pool.stats()) }))
}

export default tokenRoutes
