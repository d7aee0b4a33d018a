import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TokenView } from '../../domain/types.js'
import type { PoolHead } from '../../pool/context.js'
import type { TokenPool } from '../../pool/pool.js'
import type { Access } from '../plugins/auth.js'
import * as present from '../present.js'
import { errors, StringEnum } from '../schemas/common.js'
import { PoolNameParams } from '../schemas/pools.js'
import { History, HistoryQuery, ListQuery, Stats, StatsQuery, TokenDetail, TokenList } from '../schemas/tokens.js'
import { POOL_PREFIX, poolOf, scopeOf, TokenInPoolParams, TokenParams, tokenIdOf } from './scopes.js'

const tags = ['tokens']

const ExportQuery = Type.Object({
  since: Type.Optional(Type.String({ format: 'date-time', description: 'usages started at or after this' })),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'usages started before this' })),
  format: Type.Optional(StringEnum(['ndjson', 'csv'] as const, 'ndjson (default) or csv')),
})

const CSV_COLUMNS = ['pool', 'token_id', 'lease_id', 'user_id', 'started_at', 'expires_at', 'released_at', 'release_reason'] as const

const serializedStats = new WeakMap<object, string>()

/** Reads: a pool's tokens, one token, its history, a pool's statistics and its export. */
const tokenRoutes: FastifyPluginAsyncTypebox<{ pool: TokenPool, access: Access }> = async (app, { pool, access }) => {
  for (const [prefix, params] of [[POOL_PREFIX, PoolNameParams], ['/api', undefined]] as const) {
    const p = params === undefined ? {} : { params }
    app.get(`${prefix}/tokens`, {
      schema: {
        tags,
        summary: `The tokens of ${params === undefined ? 'the default pool' : 'the pool'}, in creation order`,
        description: 'With limit, one page (next_cursor leads on). Without it, every token, streamed: meta follows data.',
        ...p,
        querystring: ListQuery,
        response: { 200: TokenList, ...errors(404, 422, 429, 503) },
      },
    }, async (request, reply) => {
      const name = poolOf(request.params)
      const viewer = access.viewer(request)
      const { status, limit, cursor } = request.query
      if (limit !== undefined || cursor !== undefined) {
        const page = await pool.list(name, { status, limit: limit ?? 100, cursor })
        return { data: page.tokens.map((t) => present.tokenSummary(t, viewer)), meta: { ...present.head(page.counts), next_cursor: page.nextCursor } }
      }
      const { counts, tokens } = await pool.streamTokens(name, status) // a 404 or 503 before the stream starts
      return await reply.type('application/json; charset=utf-8').send(Readable.from(streamList(tokens, counts, viewer)) as never)
    })

    app.get(`${prefix}/stats`, {
      schema: {
        tags: ['stats'],
        summary: 'Usage statistics of the current window',
        ...p,
        querystring: StatsQuery,
        response: { 200: Type.Object({ data: Stats }), ...errors(404, 422, 429, 503) },
      },
    }, async (request, reply) => {
      // Many reads in flight share one answer (see TokenPool.stats): serialize it once.
      const stats = await pool.stats(poolOf(request.params), request.query.least_used_limit ?? 100)
      let body = serializedStats.get(stats)
      if (body === undefined) {
        body = reply.serialize({ data: present.stats(stats) }) as string
        serializedStats.set(stats, body)
      }
      return await reply.type('application/json; charset=utf-8').send(body as never)
    })

    app.get(`${prefix}/export`, {
      schema: {
        tags,
        summary: 'Every usage of the pool started in [since, until), oldest first, streamed (admin)',
        security: [{ bearer: [] }],
        ...p,
        querystring: ExportQuery,
        response: {
          200: { description: 'application/x-ndjson (one usage per line) or text/csv with a header row', content: { 'application/x-ndjson': { schema: { type: 'string' } }, 'text/csv': { schema: { type: 'string' } } } },
          ...errors(401, 404, 422, 429, 503),
        },
      },
      preValidation: access.requireAdmin,
    }, async (request, reply) => {
      const name = poolOf(request.params)
      const { since, until, format = 'ndjson' } = request.query
      const rows = pool.export(name, since === undefined ? undefined : new Date(since), until === undefined ? undefined : new Date(until))
      // Read the first row before answering, so that an unknown pool is a 404, not a cut stream.
      const first = await rows.next()
      const viewer = access.viewer(request)
      // With ADMIN_TOKEN set every view carries the holder's fingerprint, the CSV's included.
      const columns: ReadonlyArray<typeof CSV_COLUMNS[number] | 'holder'> = viewer.fingerprints ? [...CSV_COLUMNS, 'holder'] : CSV_COLUMNS
      async function * lines () {
        if (format === 'csv') yield columns.join(',') + '\n'
        for (let r = first; r.done !== true; r = await rows.next()) {
          const u = { pool: r.value.pool, token_id: r.value.tokenId, ...present.usage(r.value, viewer) }
          yield format === 'csv' ? columns.map((c) => u[c] ?? '').join(',') + '\n' : JSON.stringify(u) + '\n'
        }
      }
      return await reply.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8').send(Readable.from(lines()) as never)
    })
  }

  for (const [prefix, params] of [[POOL_PREFIX, TokenInPoolParams], ['/api', TokenParams]] as const) {
    app.get(`${prefix}/tokens/:token_id`, {
      schema: {
        tags,
        summary: 'One token and its active lease',
        params,
        response: { 200: Type.Object({ data: TokenDetail }), ...errors(404, 422, 429, 503) },
      },
    }, async (request) => ({ data: present.tokenDetail(await pool.get(tokenIdOf(request.params), scopeOf(request.params)), access.viewer(request)) }))

    app.get(`${prefix}/tokens/:token_id/history`, {
      schema: {
        tags,
        summary: "A token's usages, newest first, paged",
        params,
        querystring: HistoryQuery,
        response: { 200: History, ...errors(404, 422, 429, 503) },
      },
    }, async (request) => {
      const tokenId = tokenIdOf(request.params)
      const page = await pool.history(tokenId, request.query.limit ?? 50, request.query.cursor, scopeOf(request.params))
      const viewer = access.viewer(request)
      return { data: { token_id: tokenId, usages: page.usages.map((u) => present.usage(u, viewer)) }, meta: { next_cursor: page.nextCursor } }
    })
  }
}

/** The whole pool as one JSON document, a page at a time: constant memory for any size. */
async function * streamList (tokens: AsyncGenerator<TokenView>, counts: PoolHead, viewer: present.Viewer) {
  yield '{"data":['
  let chunk: string[] = []
  let first = true
  for await (const t of tokens) {
    chunk.push(JSON.stringify(present.tokenSummary(t, viewer)))
    // A chunk per thousand tokens: a write per token costs more than the JSON itself.
    if (chunk.length === 1000) {
      yield (first ? '' : ',') + chunk.join(',')
      first = false
      chunk = []
    }
  }
  if (chunk.length > 0) yield (first ? '' : ',') + chunk.join(',')
  yield `],"meta":${JSON.stringify({ ...present.head(counts), next_cursor: null })}}`
}

export default tokenRoutes
