import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import SwaggerParser from '@apidevtools/swagger-parser'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { build, defaultPool, json } from '../helpers/app.js'
import { testDb } from '../helpers/db.js'
import { buildApp, type App } from '../../src/http/app.js'
import { TokenPool } from '../../src/pool/pool.js'
import type { Db } from '../../src/store/db.js'
import { VERSION } from '../../src/version.js'

interface Media { schema: unknown, examples?: Record<string, { value: unknown }> }
interface Response { content?: Record<string, Media>, headers?: Record<string, unknown> }
interface Operation {
  parameters?: unknown[]
  requestBody?: { required: boolean, content: Record<string, Media> }
  security?: unknown[]
  responses: Record<string, Response>
}
interface Doc {
  info: { version: string, description: string }
  paths: Record<string, Record<string, Operation>>
}

type Method = NonNullable<InjectOptions['method']>

const openapi = async (app: App) => (await app.inject('/openapi.json')).json() as Doc

const responseOf = (doc: Doc, method: string, path: string, status: number) => doc.paths[path]?.[method.toLowerCase()]?.responses[String(status)]

/** Every operation of the document, as [method, path template, operation]. */
const operations = (doc: Doc) =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => [method.toUpperCase() as Method, path, op] as const))

/** A path of the template the router takes: a pool that exists, a token that doesn't. */
const concrete = (path: string) => path.replace('{pool}', 'default').replace('{token_id}', randomUUID())

const mediaType = (res: LightMyRequestResponse) => String(res.headers['content-type'] ?? '').split(';')[0] ?? ''

/** The routes users are promised (docs/api.md), with the path as OpenAPI spells it. */
const TOKEN_ROUTES = ['release', 'renew', 'cooldown', 'disable', 'enable', 'history'].map((r) => `/tokens/{token_id}/${r}`)
const CONTRACT_ROUTES = [
  'GET /api/pools', 'POST /api/pools', 'GET /api/pools/{pool}', 'PATCH /api/pools/{pool}', 'DELETE /api/pools/{pool}',
  ...['', '/pools/{pool}'].flatMap((scope) => [
    `POST /api${scope}/tokens/allocate`, `POST /api${scope}/tokens/activate`, `GET /api${scope}/tokens`, `POST /api${scope}/tokens/clear`,
    `GET /api${scope}/export`, `GET /api${scope}/tokens/{token_id}`, `PATCH /api${scope}/tokens/{token_id}`,
    ...TOKEN_ROUTES.map((r) => `${r.endsWith('history') ? 'GET' : 'POST'} /api${scope}${r}`),
  ]),
  'GET /api/stats', 'GET /api/pools/{pool}/stats',
  'GET /api/events', 'GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /openapi.json', 'GET /docs', 'GET /',
]

/** A validator for each (method, path template, status) the document declares, from the document itself. */
function validators (doc: Doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  addFormats.default(ajv)
  ajv.addSchema({ ...doc, $id: 'openapi' })
  const ptr = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1')
  return (method: string, path: string, status: number) => {
    const response = responseOf(doc, method, path, status)
    if (response === undefined) return undefined
    const schema = response.content?.['application/json']?.schema
    if (schema === undefined) return () => true
    return ajv.compile({ $ref: `openapi#/paths/${ptr(path)}/${method.toLowerCase()}/responses/${status}/content/${ptr('application/json')}/schema` })
  }
}

test('the document is valid OpenAPI 3.1 (swagger-parser) and names every route of the contract', async (t) => {
  const { app } = await build(t, 'pglite')
  const doc = await openapi(app)
  await SwaggerParser.validate(structuredClone(doc) as never)

  assert.equal(doc.info.version, VERSION, 'the package\'s version')
  // What OpenAPI can't put on an operation is said once, at the top.
  assert.match(doc.info.description, /405 method_not_allowed.*Allow/)
  assert.match(doc.info.description, /malformed URL.*422/)

  const documented = new Set(Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`)))
  for (const route of CONTRACT_ROUTES) assert.ok(documented.has(route), `${route} is documented`)
})

test('every route lists its error answers as the shared Error schema, with examples, x-request-id and Retry-After', async (t) => {
  const { app } = await build(t, 'pglite')
  const doc = await openapi(app)
  const expectErrors: Record<string, number[]> = {
    'POST /api/tokens/allocate': [400, 409, 413, 415, 422, 503],
    'POST /api/tokens/activate': [400, 409, 413, 415, 422, 503],
    'POST /api/tokens/{token_id}/release': [400, 404, 409, 413, 415, 422, 503],
    'POST /api/tokens/clear': [400, 401, 413, 415, 503],
    'POST /api/pools/{pool}/tokens/clear': [400, 401, 404, 413, 415, 422, 503],
    'POST /api/tokens/{token_id}/enable': [400, 401, 404, 413, 415, 422, 503],
    'POST /api/pools/{pool}/tokens/{token_id}/enable': [400, 401, 404, 413, 415, 422, 503],
    'DELETE /api/pools/{pool}': [400, 401, 404, 409, 413, 415, 422, 503],
    'GET /api/tokens': [422, 503],
    'GET /api/tokens/{token_id}': [404, 422, 503],
    'GET /api/tokens/{token_id}/history': [404, 422, 503],
    'GET /api/stats': [503],
    'GET /api/events': [404, 422, 429, 503],
    'GET /readyz': [503],
    'GET /': [422, 429],
    'GET /docs': [429],
  }
  for (const [route, statuses] of Object.entries(expectErrors)) {
    const [method, path] = route.split(' ') as [string, string]
    const responses = doc.paths[path]?.[method.toLowerCase()]?.responses ?? {}
    for (const status of statuses) {
      const response = responses[status]
      assert.ok(response, `${route} documents ${status}`)
      const media = response.content?.['application/json']
      assert.deepEqual(media?.schema, { $ref: '#/components/schemas/Error' }, `${route} ${status} is an Error`)
      assert.ok(Object.keys(media?.examples ?? {}).length > 0, `${route} ${status} has an example`)
      assert.ok(response.headers?.['x-request-id'], `${route} ${status} names x-request-id`)
      if (status === 409 && /\/tokens\/(allocate|activate)$/.test(path)) assert.ok(response.headers?.['retry-after'], `${route} 409 names Retry-After`)
      if (status === 429 || status === 503) assert.ok(response.headers?.['retry-after'], `${route} ${status} names Retry-After`)
      if (status === 401) assert.ok(response.headers?.['www-authenticate'], `${route} 401 names WWW-Authenticate`)
    }
  }
})

test('each kind of route declares what it can answer: a JSON body, admin, parameters', async (t) => {
  const { app } = await build(t, 'pglite')
  const doc = await openapi(app)
  for (const [method, path, op] of operations(doc)) {
    const route = `${method} ${path}`
    const declares = (status: number, header?: string) => {
      assert.ok(op.responses[status], `${route} declares ${status}`)
      if (header !== undefined) assert.ok(op.responses[status]?.headers?.[header], `${route} ${status} names ${header}`)
    }
    // Fastify parses the body of every POST, PATCH and DELETE, whether or not the route reads it.
    if (['POST', 'PATCH', 'DELETE'].includes(method)) {
      assert.ok(op.requestBody?.content['application/json'], `${route} documents its JSON body`)
      for (const status of [400, 413, 415]) declares(status)
    }
    if (op.security !== undefined) declares(401, 'www-authenticate')
    if ((op.parameters ?? []).length > 0) declares(422)
  }
  assert.deepEqual(Object.keys(doc.paths['/api/events']?.get?.responses['200']?.content ?? {}), ['text/event-stream'])
  for (const path of ['/api/tokens/clear', '/api/pools/{pool}/tokens/clear', '/api/tokens/{token_id}/enable', '/api/pools/{pool}/tokens/{token_id}/enable']) {
    assert.equal(doc.paths[path]?.post?.requestBody?.required, false, `${path} takes no body, but parses one`)
  }
})

test("the contract's examples are in the document and match the schemas they illustrate", async (t) => {
  const { app } = await build(t, 'pglite')
  const doc = await openapi(app)
  const validate = validators(doc)
  let checked = 0
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      for (const [status, response] of Object.entries(op.responses)) {
        for (const [name, example] of Object.entries(response.content?.['application/json']?.examples ?? {})) {
          const v = validate(method, path, Number(status))!
          assert.ok(v(example.value), `${method} ${path} ${status} example ${name}: ${JSON.stringify((v as { errors?: unknown }).errors)}`)
          checked++
        }
      }
    }
  }
  const allocate = doc.paths['/api/tokens/allocate']?.post?.responses['200']?.content?.['application/json']?.examples
  assert.equal((allocate?.granted?.value as { data: { lease_id: number } }).data.lease_id, 4711)
  assert.ok(checked > 30, `${checked} examples checked`)
})

test('real answers, success and failure, have a status, media type and headers the document declares and match its schema', async (t) => {
  const adminToken = 'sesame'
  const { app } = await build(t, 'pglite', { poolSize: 2, adminToken })
  const doc = await openapi(app)
  const validate = validators(doc)
  const seen = new Set<string>()

  const check = (method: string, path: string, res: LightMyRequestResponse, expected: number) => {
    assert.equal(res.statusCode, expected, `${method} ${path}: ${res.body}`)
    const v = validate(method, path, res.statusCode)
    assert.ok(v, `${method} ${path} declares ${res.statusCode}`)
    const declared = responseOf(doc, method, path, res.statusCode)
    if (res.body !== '') assert.ok(declared?.content?.[mediaType(res)], `${method} ${path} ${res.statusCode} declares ${mediaType(res)}`)
    for (const header of ['retry-after', 'www-authenticate', 'location']) {
      if (res.headers[header] !== undefined) assert.ok(declared?.headers?.[header], `${method} ${path} ${res.statusCode} names ${header}`)
    }
    if (mediaType(res) === 'application/json') {
      assert.ok(v(res.json()), `${method} ${path} ${res.statusCode}: ${JSON.stringify((v as { errors?: unknown }).errors)} in ${res.body}`)
    }
    assert.ok(res.headers['x-request-id'])
    seen.add(`${method} ${path} ${res.statusCode}`)
    return res
  }

  const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
  const post = (a: App, url: string, body: unknown, headers: Record<string, string> = {}) =>
    a.inject({ method: 'POST', url, ...json(body), headers: { 'content-type': 'application/json', ...headers } })

  const lease = check('POST', '/api/tokens/allocate', await post(app, '/api/tokens/allocate', { user_id: a }), 200).json().data
  check('POST', '/api/tokens/activate', await post(app, '/api/tokens/activate', { user_id: a }), 200)
  check('POST', '/api/tokens/allocate', await post(app, '/api/tokens/allocate', { user_id: b }), 200)
  const evicting = check('POST', '/api/tokens/allocate', await post(app, '/api/tokens/allocate', { user_id: c }), 200).json().data
  // ADMIN_TOKEN is set and this call has none: the evicted user's id is hidden.
  assert.equal(evicting.evicted_user_id, null)
  // Fastify's own refusals read as the document's examples show them.
  const example = (status: number) => Object.values(responseOf(doc, 'POST', '/api/tokens/allocate', status)?.content?.['application/json']?.examples ?? {})[0]?.value
  for (const [status, res] of [
    [400, await app.inject({ method: 'POST', url: '/api/tokens/allocate', headers: { 'content-type': 'application/json' }, payload: '{"user_id":' })],
    [415, await app.inject({ method: 'POST', url: '/api/tokens/allocate', headers: { 'content-type': 'text/plain' }, payload: a })],
    [413, await post(app, '/api/tokens/allocate', { user_id: 'x'.repeat(70_000) })],
  ] as const) assert.deepEqual(check('POST', '/api/tokens/allocate', res, status).json(), example(status))
  check('POST', '/api/tokens/allocate', await post(app, '/api/tokens/allocate', { user_id: 'nope' }), 422)
  check('POST', '/api/tokens/allocate', await post(app, '/api/tokens/allocate', {}), 422)

  const release = `/api/tokens/${evicting.token_id}/release`
  check('POST', '/api/tokens/{token_id}/release', await post(app, release, { user_id: a }), 409)
  check('POST', '/api/tokens/{token_id}/release', await post(app, `/api/tokens/${randomUUID()}/release`, { user_id: a }), 404)
  check('POST', '/api/tokens/{token_id}/release', await post(app, '/api/tokens/not-a-uuid/release', { user_id: a }), 422)
  check('POST', '/api/tokens/{token_id}/release', await post(app, release, { user_id: c }), 200)

  check('GET', '/api/tokens', await app.inject('/api/tokens'), 200)
  check('GET', '/api/tokens', await app.inject('/api/tokens?status=active'), 200)
  check('GET', '/api/tokens', await app.inject('/api/tokens?status=lost'), 422)
  check('GET', '/api/tokens/{token_id}', await app.inject(`/api/tokens/${lease.token_id}`), 200)
  check('GET', '/api/tokens/{token_id}', await app.inject(`/api/tokens/${randomUUID()}`), 404)
  check('GET', '/api/tokens/{token_id}/history', await app.inject(`/api/tokens/${lease.token_id}/history?limit=1`), 200)
  check('GET', '/api/tokens/{token_id}/history', await app.inject(`/api/tokens/${lease.token_id}/history?cursor=zz`), 422)
  check('GET', '/api/tokens/{token_id}/history', await app.inject(`/api/tokens/${randomUUID()}/history`), 404)
  check('GET', '/api/stats', await app.inject('/api/stats'), 200)
  check('POST', '/api/tokens/clear', await app.inject({ method: 'POST', url: '/api/tokens/clear' }), 401)
  check('POST', '/api/tokens/clear', await app.inject({ method: 'POST', url: '/api/tokens/clear', headers: { authorization: `Bearer ${adminToken}` } }), 200)
  const admin = { authorization: `Bearer ${adminToken}` }
  check('GET', '/api/pools', await app.inject('/api/pools'), 200)
  check('GET', '/api/pools/{pool}', await app.inject('/api/pools/default'), 200)
  check('GET', '/api/pools/{pool}', await app.inject('/api/pools/nope'), 404)
  check('GET', '/api/pools/{pool}', await app.inject('/api/pools/Nope'), 422)
  check('POST', '/api/pools', await post(app, '/api/pools', { name: 'keys', size: 2, lease_ttl_seconds: 30, lease_max_seconds: 60 }), 401)
  check('POST', '/api/pools', await post(app, '/api/pools', { name: 'keys', size: 2, lease_ttl_seconds: 30, lease_max_seconds: 60 }, admin), 201)
  check('POST', '/api/pools', await post(app, '/api/pools', { name: 'keys' }, admin), 409)
  check('POST', '/api/pools', await post(app, '/api/pools', { name: '-x' }, admin), 422)
  check('PATCH', '/api/pools/{pool}', await app.inject({ method: 'PATCH', url: '/api/pools/keys', ...json({ size: 3 }), headers: { 'content-type': 'application/json', ...admin } }), 200)
  check('PATCH', '/api/pools/{pool}', await app.inject({ method: 'PATCH', url: '/api/pools/default', ...json({ size: 3 }), headers: { 'content-type': 'application/json', ...admin } }), 409)
  const keyLease = check('POST', '/api/pools/{pool}/tokens/allocate', await post(app, '/api/pools/keys/tokens/allocate', { user_id: a }), 200).json().data
  check('GET', '/api/pools/{pool}/tokens', await app.inject('/api/pools/keys/tokens?limit=1'), 200)
  check('GET', '/api/pools/{pool}/stats', await app.inject('/api/pools/keys/stats?least_used_limit=1'), 200)
  check('POST', '/api/tokens/{token_id}/renew', await post(app, `/api/tokens/${keyLease.token_id}/renew`, { user_id: a }), 200)
  check('POST', '/api/tokens/{token_id}/renew', await post(app, `/api/tokens/${keyLease.token_id}/renew`, { user_id: b }), 409)
  check('PATCH', '/api/tokens/{token_id}', await app.inject({ method: 'PATCH', url: `/api/tokens/${keyLease.token_id}`, ...json({ label: 'k1' }), headers: { 'content-type': 'application/json', ...admin } }), 200)
  check('POST', '/api/tokens/{token_id}/cooldown', await post(app, `/api/tokens/${keyLease.token_id}/cooldown`, { user_id: a, seconds: 5, reallocate: true }), 200)
  check('POST', '/api/tokens/{token_id}/cooldown', await post(app, `/api/tokens/${keyLease.token_id}/cooldown`, { user_id: a, seconds: 0 }), 422)
  check('POST', '/api/tokens/{token_id}/disable', await post(app, `/api/tokens/${keyLease.token_id}/disable`, { reason: 'revoked' }, admin), 200)
  check('POST', '/api/tokens/{token_id}/cooldown', await post(app, `/api/tokens/${keyLease.token_id}/cooldown`, { seconds: 5 }, admin), 409)
  check('POST', '/api/tokens/{token_id}/enable', await post(app, `/api/tokens/${keyLease.token_id}/enable`, {}, admin), 200)
  // Routes that take no fields still parse a body: none and {} are the same; bad JSON, another type or too much is refused.
  const send = async (method: Method, url: string, payload?: string, type = 'application/json') =>
    await app.inject({ method, url, payload, headers: { ...(payload === undefined ? {} : { 'content-type': type }), ...admin } })
  for (const [method, path, url] of [
    ['POST', '/api/tokens/clear', '/api/tokens/clear'],
    ['POST', '/api/pools/{pool}/tokens/clear', '/api/pools/default/tokens/clear'],
    ['POST', '/api/tokens/{token_id}/enable', `/api/tokens/${keyLease.token_id}/enable`],
    ['POST', '/api/pools/{pool}/tokens/{token_id}/enable', `/api/pools/keys/tokens/${keyLease.token_id}/enable`],
    ['DELETE', '/api/pools/{pool}', '/api/pools/keys'],
  ] as const) {
    if (method === 'POST') {
      check(method, path, await send(method, url), 200)
      check(method, path, await send(method, url, '{}'), 200)
    }
    check(method, path, await send(method, url, '{bad'), 400)
    check(method, path, await send(method, url, 'x', 'text/plain'), 415)
    check(method, path, await send(method, url, JSON.stringify({ x: 'x'.repeat(70_000) })), 413)
  }
  check('GET', '/api/pools/{pool}/export', await app.inject({ url: '/api/pools/keys/export', headers: admin }), 200)
  check('DELETE', '/api/pools/{pool}', await app.inject({ method: 'DELETE', url: '/api/pools/keys', headers: admin }), 409)
  check('DELETE', '/api/pools/{pool}', await app.inject({ method: 'DELETE', url: '/api/pools/keys?force=true', headers: admin }), 200)
  check('GET', '/api/events', await app.inject('/api/events?pool=nope'), 404)
  check('GET', '/api/events', await app.inject('/api/events?pool=Nope'), 422)
  check('GET', '/api/events', await app.inject('/api/events?last_event_id=x'), 422)
  check('GET', '/api/events', await app.inject({ url: '/api/events', headers: { 'last-event-id': 'x' } }), 422)
  const events = await app.inject({ url: '/api/events', payloadAsStream: true })
  assert.equal(events.statusCode, 200)
  assert.ok(responseOf(doc, 'GET', '/api/events', 200)?.content?.[mediaType(events)], `events declare ${mediaType(events)}`)
  events.stream().destroy()
  check('GET', '/healthz', await app.inject('/healthz'), 200)
  check('GET', '/readyz', await app.inject('/readyz'), 200)
  const metrics = check('GET', '/metrics', await app.inject('/metrics'), 200)
  assert.match(String(metrics.headers['content-type']), /^text\/plain/)
  check('GET', '/openapi.json', await app.inject('/openapi.json'), 200)
  const page = check('GET', '/', await app.inject('/'), 200)
  assert.match(String(page.headers['content-type']), /^text\/html/)
  check('GET', '/', await app.inject({ url: '/', headers: { 'if-none-match': String(page.headers.etag) } }), 304)
  check('GET', '/', await app.inject({ url: '/', headers: { range: 'bytes=0-9' } }), 206)
  check('GET', '/', await app.inject({ url: '/', headers: { range: `bytes=${page.rawPayload.length}-` } }), 422)
  check('GET', '/docs', await app.inject('/docs'), 200)
  t.diagnostic(`${seen.size} distinct (route, status) answers checked`)
})

test('the answers every path gives are said once, at the top: 405 with Allow naming the methods documented, 422 for a malformed URL', async (t) => {
  const { app } = await build(t, 'pglite')
  const doc = await openapi(app)
  for (const [path, item] of Object.entries(doc.paths)) {
    const methods = Object.keys(item).map((m) => m.toUpperCase() as Method)
    const url = concrete(path)
    const res = await app.inject({ method: 'PUT', url })
    assert.equal(res.statusCode, 405, `PUT ${path}: ${res.body}`)
    assert.equal(res.headers.allow, [...methods].sort().join(', '), `Allow on ${path}`)
    const malformed = await app.inject({ method: methods[0], url: `${url}?x=%ZZ` })
    assert.equal(malformed.statusCode, 422, `${path}?x=%ZZ: ${malformed.body}`)
    assert.equal(malformed.json().error.details.field, 'url')
  }
})

test('401 with WWW-Authenticate on every admin route; a body is required exactly where leaving it out is a 422', async (t) => {
  const { app, pool } = await build(t, 'pglite', { adminToken: 'sesame' })
  // Without ADMIN_TOKEN a loopback caller (as inject is) is the admin.
  const open = await buildApp({ pool })
  t.after(async () => { await open.close() })
  const doc = await openapi(app)
  for (const [method, path, op] of operations(doc)) {
    if (op.security !== undefined) {
      const res = await app.inject({ method, url: concrete(path) })
      assert.equal(res.statusCode, 401, `${method} ${path}: ${res.body}`)
      assert.equal(res.headers['www-authenticate'], 'Bearer')
    }
    if (op.requestBody !== undefined) {
      const res = await open.inject({ method, url: concrete(path) })
      const refused = res.statusCode === 422 && res.json().error.details.location === 'body'
      assert.equal(refused, op.requestBody.required, `${method} ${path} without a body: ${res.statusCode} ${res.body}`)
    }
  }
})

test('429 rate_limited (RATE_LIMIT_PER_MINUTE) is declared exactly where the limit applies, the dashboard and /docs included', async (t) => {
  const { pool } = await build(t, 'pglite')
  const app = await buildApp({ pool, rateLimitPerMinute: 1 })
  t.after(async () => { await app.close() })
  const doc = await openapi(app)
  assert.equal((await app.inject('/api/pools')).statusCode, 200, 'the minute\'s one request')
  for (const [method, path, op] of operations(doc)) {
    const res = await app.inject({ method, url: concrete(path) })
    assert.equal(res.statusCode === 429, op.responses['429'] !== undefined, `${method} ${path} answered ${res.statusCode}`)
    if (res.statusCode !== 429) continue
    assert.ok(Number(res.headers['retry-after']) >= 1)
    assert.ok(op.responses['429']?.headers?.['retry-after'], `${method} ${path} 429 names Retry-After`)
    const example = Object.values(op.responses['429']?.content?.['application/json']?.examples ?? {}).map((e) => e.value as { error: { code: string, details: object } })
      .find((e) => e.error.code === 'rate_limited')
    assert.deepEqual(Object.keys(res.json().error.details).sort(), Object.keys(example?.error.details ?? {}).sort(), `${method} ${path}: the example's details`)
  }
})

test('503 unavailable, with Retry-After, is declared on exactly the routes that answer it when the database drops every connection', async (t) => {
  const db = await testDb(t, 'pglite')
  let down = false
  const dropped = () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })
  const flaky: Db = {
    kind: db.kind,
    query: async (text, values) => { if (down) throw dropped(); return await db.query(text, values) },
    withSession: async (fn) => { if (down) throw dropped(); return await db.withSession(fn) },
    listen: db.listen.bind(db),
    close: db.close.bind(db),
  }
  const pool = new TokenPool(flaky, { defaultPool: defaultPool({}), sweepIntervalMs: 0 })
  await pool.start()
  const app = await buildApp({ pool })
  t.after(async () => {
    down = false
    await app.close()
    await pool.stop()
  })
  const doc = await openapi(app)
  // Not the default pool, whose settings are refused (409) before the database is asked.
  await app.inject({ method: 'POST', url: '/api/pools', ...json({ name: 'keys', size: 1 }) })
  const token = (await app.inject('/api/pools/keys/tokens?limit=1')).json().data[0].id
  // A body each route accepts, so that the request gets as far as the database.
  const bodies: Array<[RegExp, unknown]> = [
    [/(allocate|activate|release|renew)$/, { user_id: randomUUID() }],
    [/cooldown$/, { seconds: 5 }],
    [/^PATCH .*\{token_id\}$/, { label: 'k' }],
    [/^POST \/api\/pools$/, { name: 'other' }],
    [/^PATCH \/api\/pools\/\{pool\}$/, { size: 2 }],
  ]
  down = true
  for (const [method, path, op] of operations(doc)) {
    const body = bodies.find(([route]) => route.test(`${method} ${path}`))?.[1]
    const url = path.replace('{pool}', 'keys').replace('{token_id}', token)
    const res = await app.inject({ method, url, ...(body === undefined ? {} : json(body)) })
    assert.equal(res.statusCode === 503, op.responses['503'] !== undefined, `${method} ${path} answered ${res.statusCode} ${res.body}`)
    if (res.statusCode !== 503) continue
    assert.ok(Number(res.headers['retry-after']) >= 1, `${method} ${path} sends Retry-After`)
    assert.ok(op.responses['503']?.headers?.['retry-after'], `${method} ${path} 503 names Retry-After`)
  }
})

test('pool_exhausted (ON_EXHAUSTED=reject) is declared, with Retry-After, and matches the Error schema', async (t) => {
  // One app per test: on PGlite the test schemas share one instance (and its search_path).
  const { app } = await build(t, 'pglite', { poolSize: 1, onExhausted: 'reject' })
  const validate = validators(await openapi(app))
  await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
  const res = await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
  assert.equal(res.statusCode, 409)
  assert.equal(res.json().error.code, 'pool_exhausted')
  assert.ok(Number(res.headers['retry-after']) >= 1)
  assert.ok(validate('POST', '/api/tokens/allocate', 409)!(res.json()))
})

test('/docs serves Swagger UI from the package itself (no CDN), pointing at the document', async (t) => {
  const { app } = await build(t, 'pglite')
  const page = await app.inject('/docs/')
  assert.equal(page.statusCode, 200)
  assert.match(String(page.headers['content-type']), /text\/html/)
  assert.doesNotMatch(page.body, /https?:\/\/(cdn|unpkg)/)
  const init = await app.inject('/docs/static/swagger-initializer.js')
  assert.equal(init.statusCode, 200)
  const bundle = await app.inject('/docs/static/swagger-ui-bundle.js')
  assert.equal(bundle.statusCode, 200)
  assert.ok(bundle.body.length > 100_000)
  const json = await app.inject('/docs/json')
  assert.equal(json.statusCode, 200)
  assert.equal(json.json().openapi, '3.1.0')
})
