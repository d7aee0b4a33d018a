import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { VERSION } from '../../version.js'

/**
 * OpenAPI 3.1 generated from the route schemas the server validates with. Must be registered
 * before the routes, so @fastify/swagger's onRoute hook sees every one of them.
 * Served at /openapi.json, with Swagger UI (bundled, works offline) at /docs.
 */
export default fp(async function openapi (app: FastifyInstance) {
  // The dashboard's files are static routes, hidden from @fastify/swagger; its page is part of the contract.
  let dashboard = false
  app.addHook('onRoute', (route) => {
    if (route.url === '/' && [route.method].flat().includes('GET')) dashboard = true
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Token Pool',
        version: VERSION,
        description: 'Hands out a fixed pool of tokens as short, fair, fenced leases, coordinated by PostgreSQL. ' +
          'Every failure answers `{"error": {"code", "message", "details"}}`; every answer carries `x-request-id`.\n\n' +
          // OpenAPI can only describe the methods a path has, so the answers every path can give are said once, here.
          'On every path: a method the path does not list is `405 method_not_allowed`, with an `Allow` header naming the methods it takes ' +
          '(HEAD is answered wherever GET is); a malformed URL (a bad %-escape) is `422 validation_failed` with `details.field` `url`. ' +
          'An unknown path is `404 not_found`, and a bug is `500 internal_error`.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      tags: [
        { name: 'tokens', description: 'Leasing tokens' },
        { name: 'stats', description: 'Usage of the current window' },
        { name: 'events', description: 'Changes as server-sent events' },
        { name: 'operations', description: 'Health, readiness, metrics, this document' },
      ],
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN, when the server sets one' } },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transformObject: (doc) => decorate(('openapiObject' in doc ? doc.openapiObject : {}) as OpenApi, { dashboard }) as object,
  })

  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } })

  app.get('/openapi.json', {
    schema: {
      tags: ['operations'],
      summary: 'This document (OpenAPI 3.1)',
      // Any JSON: an empty schema serializes it as it is.
      response: { 200: { description: 'this document', content: { 'application/json': { schema: {} } } } },
    },
    config: { rateLimit: false },
  }, async () => app.swagger())
}, { name: 'openapi' })

interface Media { schema?: unknown, example?: unknown, examples?: Record<string, { summary?: string, value: unknown }> }
interface Response { description?: string, headers?: Record<string, unknown>, content?: Record<string, Media> }
interface Operation { requestBody?: { required?: boolean, content?: Record<string, Media> }, responses?: Record<string, Response>, summary?: string, tags?: string[] }
export interface OpenApi { paths?: Record<string, Record<string, Operation>> }

const REQUEST_ID_HEADER = {
  description: 'the request id: the incoming x-request-id if there was one, else a new UUID; it is in the log line too',
  schema: { type: 'string' },
}
const RETRY_AFTER_HEADER = { description: 'seconds to wait before trying again', schema: { type: 'integer', minimum: 1 } }

const LOCATION_HEADER = { description: 'where the new pool is: /api/pools/{name}', schema: { type: 'string' } }
const WWW_AUTHENTICATE_HEADER = { description: 'Bearer: send Authorization: Bearer <ADMIN_TOKEN>', schema: { type: 'string', enum: ['Bearer'] } }

const RATE_LIMITED = 'rate_limited: more than RATE_LIMIT_PER_MINUTE requests from this address this minute (when the server sets one); see Retry-After'

/** What a status means on the routes named, where DESCRIPTIONS says too little (of the 409s, only pool_exhausted comes with Retry-After). */
const SPECIFIC: Array<[RegExp, string, string]> = [
  [/^POST .*\/tokens\/(allocate|activate)$/, '409', 'pool_exhausted: no token can be given; see Retry-After (absent when every token is disabled)'],
  [/^POST .*\/tokens\/(allocate|activate)$/, '429', `quota_exceeded: the user took user_quota new leases in this window, see Retry-After; or ${RATE_LIMITED}`],
  [/^POST .*\/release$/, '409', 'not_holder: that user does not hold that token now'],
  [/^POST .*\/renew$/, '409', 'not_holder, or renewal_limit: the lease already ends at renewable_until (in details)'],
  [/^POST .*\/cooldown$/, '409', 'not_holder: that user does not hold that token now; token_disabled: an admin cooldown of a disabled token'],
  [/^POST \/api\/pools$/, '409', 'pool_exists: the name is in use'],
  [/^PATCH \/api\/pools\/\{pool\}$/, '409', 'managed_by_config: the default pool is set by the environment'],
  [/^DELETE \/api\/pools\/\{pool\}$/, '409', 'pool_busy: a lease is active (use ?force=true); managed_by_config: the default pool'],
  [/^GET \/$/, '422', 'validation_failed: a Range header past the end of the page'],
]
const specificTo = (key: string, status: string) => SPECIFIC.find(([route, s]) => s === status && route.test(key))?.[2]

const DESCRIPTIONS: Record<string, string> = {
  200: 'OK',
  400: 'invalid_json: the body is not JSON',
  401: 'unauthorized: needs Authorization: Bearer <ADMIN_TOKEN>',
  404: 'not_found: no pool or token has that name or id (under /api/pools/{pool}/, a token of another pool counts as none)',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type: the body is not application/json',
  422: 'validation_failed: a field or path parameter is missing or malformed; details names the field',
  429: RATE_LIMITED,
  503: 'unavailable: the database cannot be reached; nothing was changed, unless the message says what was (or that the outcome is unknown)',
}

/**
 * Adds what route schemas can't say: response descriptions and headers (x-request-id on every
 * answer, Retry-After where the contract promises it), which bodies may be left out, and the
 * contract's examples.
 */
function decorate (doc: OpenApi, { dashboard }: { dashboard: boolean }): OpenApi {
  // Fresh objects: the loop below decorates each response in place.
  const page = (description = 'an HTML page') => ({ description, content: { 'text/html': { schema: { type: 'string' } } } })
  const error = () => ({ content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } })
  // @fastify/swagger-ui and @fastify/static hide their routes; the pages themselves are part of the contract.
  // @fastify/static answers conditional and range requests for the dashboard's page.
  const dashboardResponses = {
    200: page(),
    206: page('the part of the page a Range header asked for'),
    304: { description: 'not modified: the page has the ETag sent in If-None-Match (or is no newer than If-Modified-Since)' },
    422: error(),
    429: error(),
  }
  doc.paths = {
    ...doc.paths,
    ...(dashboard ? { '/': { get: { tags: ['operations'], summary: 'The dashboard: every token of the pool, live', responses: dashboardResponses } as Operation } } : {}),
    '/docs': {
      get: {
        tags: ['operations'],
        summary: 'This document in Swagger UI (served from the package, works offline)',
        responses: { 200: page(), 429: error() },
      } as Operation,
    },
  }
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      // @fastify/swagger marks every body required, but a request without one reads as {} (app.ts).
      if (op.requestBody !== undefined) op.requestBody.required = !acceptsEmpty(op.requestBody.content?.['application/json']?.schema)
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        const key = `${method.toUpperCase()} ${path}`
        const specific = specificTo(key, status)
        if (specific !== undefined) response.description = specific
        else if (status !== '200' || response.description === 'Default Response') response.description = DESCRIPTIONS[status] ?? response.description
        response.headers = { 'x-request-id': REQUEST_ID_HEADER, ...response.headers }
        if (['429', '503'].includes(status) || (status === '409' && specific?.startsWith('pool_exhausted') === true)) {
          response.headers['retry-after'] = RETRY_AFTER_HEADER
        }
        if (status === '401') response.headers['www-authenticate'] = WWW_AUTHENTICATE_HEADER
        if (status === '201') response.headers.location = LOCATION_HEADER
        const media = response.content?.['application/json']
        const examples = examplesFor(key, status)
        if (media !== undefined && examples !== undefined) {
          delete media.example
          media.examples = examples
        }
      }
    }
  }
  return doc
}

/** Whether {} passes a body schema: true of every body here without required fields or minProperties. */
function acceptsEmpty (schema: unknown): boolean {
  const { required = [], minProperties = 0 } = (schema ?? {}) as { required?: unknown[], minProperties?: number }
  return required.length === 0 && minProperties === 0
}

const TOKEN = '6f1c1a4e-3d2b-4f7a-9a53-2c1d0e9b8a71'
const USER = '0b7e3c52-1f4d-4a8e-9c61-5d2a7b3e9f10'
const OTHER = '9d4b2e61-7a3c-4f58-8b12-3e6c1a9d5f27'
const T0 = '2026-11-23T14:30:00.000Z'
const T1 = '2026-11-23T14:32:00.000Z'

const lease = { pool: 'default', token_id: TOKEN, user_id: USER, lease_id: 4711, started_at: T0, expires_at: T1, expires_in_seconds: 120, renewable_until: T1, evicted_user_id: null }
const ended = { pool: 'default', token_id: TOKEN, lease_id: 4711, user_id: USER, started_at: T0, released_at: '2026-11-23T14:31:10.512Z', release_reason: 'released' }
const window = { window_started_at: '2026-11-23T00:00:00.000Z', window_resets_at: '2026-11-24T00:00:00.000Z' }
const counts = { total: 100, active: 1, available: 98, cooling: 1, disabled: 0, waiting: 0 }
const token = { id: TOKEN, pool: 'default', label: null, status: 'active', current_user_id: USER, usage_count: 3, cooling_until: null, disabled_reason: null }
const cooling = { ...token, status: 'cooling', current_user_id: null, cooling_until: '2026-11-23T14:31:40.512Z', active_usage: null }
const settings = {
  size: 3,
  lease_ttl_seconds: 15,
  lease_max_seconds: 600,
  usage_window_hours: 24,
  on_exhausted: 'reject',
  max_wait_seconds: 60,
  cooldown_max_seconds: 3600,
  user_quota: null,
}
const pool = { name: 'openai-keys', ...settings, total: 3, active: 1, available: 2, cooling: 0, disabled: 0, waiting: 0 }

const err = (code: string, message: string, details: unknown = null) => ({ value: { error: { code, message, details } } })
const rateLimited = err('rate_limited', 'More than 600 requests a minute; try again in 12 s.', { limit_per_minute: 600, retry_after_seconds: 12 })

/** The API's examples (docs/api.md), with the "…" filled in. */
export const EXAMPLES: Record<string, Record<string, Record<string, { summary?: string, value: unknown }>>> = {
  'POST /api/tokens/allocate': {
    200: {
      granted: { summary: 'a new lease', value: { data: lease } },
      evicted: { summary: 'the pool was full: the oldest lease was evicted', value: { data: { ...lease, lease_id: 4712, evicted_user_id: OTHER } } },
      existing: { summary: 'the user already held a lease: the same one, not extended', value: { data: { ...lease, expires_in_seconds: 73 } } },
    },
    409: { pool_exhausted: err('pool_exhausted', 'No token is available; try again when the earliest lease or cooldown ends.', { pool: 'default', retry_after_seconds: 41 }) },
    429: {
      quota_exceeded: err('quota_exceeded', 'This user has taken its quota of new leases in pool default for this window.', { pool: 'default', retry_after_seconds: 3600 }),
      rate_limited: rateLimited,
    },
  },
  'POST /api/tokens/{token_id}/renew': {
    200: { renewed: { value: { data: { ...lease, expires_at: '2026-11-23T14:33:00.000Z', renewable_until: '2026-11-23T14:40:00.000Z' } } } },
    409: { renewal_limit: err('renewal_limit', 'The lease already ends at its renewal cap (renewable_until).', { renewable_until: T1 }) },
  },
  'POST /api/tokens/{token_id}/cooldown': {
    200: {
      reallocated: {
        summary: 'the key is cooling; the holder got another one',
        value: { data: { token: cooling, ended_lease: { ...ended, release_reason: 'cooldown' }, lease: { ...lease, token_id: OTHER, lease_id: 4712 }, lease_error: null } },
      },
    },
  },
  'GET /api/pools': { 200: { pools: { value: { data: [{ ...pool, name: 'default', size: 100, total: 100, available: 99 }, pool] } } } },
  'POST /api/pools': {
    201: { created: { value: { data: { ...pool, active: 0, available: 3 } } } },
    409: { pool_exists: err('pool_exists', 'A pool named openai-keys exists already.') },
  },
  'DELETE /api/pools/{pool}': {
    409: {
      pool_busy: err('pool_busy', 'Pool openai-keys has active leases; delete with ?force=true to end them.'),
      managed_by_config: err('managed_by_config', 'The default pool is set by the environment (POOL_SIZE, LEASE_TTL_SECONDS, …) at every start; change it there.'),
    },
  },
  'POST /api/tokens/{token_id}/release': {
    200: { released: { value: { data: ended } } },
    409: { not_holder: err('not_holder', 'That user does not hold that token now.') },
  },
  'GET /api/tokens': {
    200: {
      pool: {
        value: {
          data: [
            { ...token, lease_id: 4711, started_at: T0, expires_at: T1 },
            { ...token, id: OTHER, status: 'available', current_user_id: null, lease_id: null, started_at: null, expires_at: null, usage_count: 2 },
          ],
          meta: { ...counts, ...window, next_cursor: null },
        },
      },
    },
  },
  'GET /api/tokens/{token_id}': {
    200: {
      active: { value: { data: { ...token, active_usage: { lease_id: 4711, user_id: USER, started_at: T0, expires_at: T1, renewable_until: T1 } } } },
      cooling: { value: { data: cooling } },
    },
  },
  'GET /api/tokens/{token_id}/history': {
    200: {
      page: {
        value: {
          data: {
            token_id: TOKEN,
            usages: [
              { lease_id: 4711, user_id: USER, started_at: T0, expires_at: T1, released_at: null, release_reason: null },
              { lease_id: 4650, user_id: OTHER, started_at: '2026-11-23T14:20:00.000Z', expires_at: '2026-11-23T14:22:00.000Z', released_at: '2026-11-23T14:22:00.000Z', release_reason: 'expired' },
            ],
          },
          meta: { next_cursor: 'djI6dG9rZW4vYzg4MTM1ODItMTAxNi00OTBhLTg1MjctOGY0YTc1N2ZkMjEzOjQ2NTA' },
        },
      },
    },
  },
  'POST /api/tokens/clear': { 200: { cleared: { value: { data: { cleared_tokens: 37 } } } } },
  'GET /api/stats': {
    200: {
      stats: {
        value: {
          data: {
            pool: 'default',
            ...window,
            ...counts,
            allocations_in_window: 512,
            usage_count: { min: 4, max: 6, mean: 5.12 },
            least_used_count: 1,
            least_used: [{ token_id: TOKEN, usage_count: 4 }],
          },
        },
      },
    },
  },
  'GET /': { 422: { range_not_satisfiable: err('validation_failed', 'Range Not Satisfiable') } },
}

const ERROR_EXAMPLES: Record<string, Record<string, { value: unknown }>> = {
  400: { invalid_json: err('invalid_json', 'The body is not valid JSON.') },
  401: { unauthorized: err('unauthorized', 'This needs Authorization: Bearer <ADMIN_TOKEN>.') },
  404: { not_found: err('not_found', 'The pool has no token with that id.') },
  413: { payload_too_large: err('payload_too_large', 'The body is larger than this service accepts.') },
  415: { unsupported_media_type: err('unsupported_media_type', 'Send the body as JSON with Content-Type: application/json.') },
  422: {
    validation_failed: err('validation_failed', 'user_id must be a UUID', {
      field: 'user_id', location: 'body', issues: [{ field: 'user_id', message: 'must be a UUID' }],
    }),
  },
  429: { rate_limited: rateLimited },
  503: { unavailable: err('unavailable', 'The database is unavailable; nothing was changed. Try again shortly.') },
}

function examplesFor (key: string, status: string) {
  // A pool route shows its default-pool twin's examples; activate is allocate.
  const alias = key.replace('/api/pools/{pool}/', '/api/').replace('/tokens/activate', '/tokens/allocate')
  // Without a token in the path, only a pool can be missing.
  if (status === '404' && !key.includes('{token_id}')) return { not_found: err('not_found', 'There is no pool named openai-keys.') }
  return EXAMPLES[alias]?.[status] ?? ERROR_EXAMPLES[status]
}
