import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import SwaggerParser from '@apidevtools/swagger-parser'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { LightMyRequestResponse } from 'fastify'
import { build, json } from '../helpers/app.js'
import type { App } from '../../src/http/app.js'
import { VERSION } from '../../src/version.js'

interface Doc {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown, examples?: Record<string, { value: unknown }> }>, headers?: Record<string, unknown> }> }>>
}

const openapi = async (app: App) => (await app.inject('/openapi.json')).json() as Doc

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
    const response = doc.paths[path]?.[method.toLowerCase()]?.responses[String(status)]
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

  assert.equal((doc as unknown as { info: { version: string } }).info.version, VERSION, 'the package\'s version')

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
    'POST /api/tokens/clear': [401, 503],
    'GET /api/tokens': [422, 503],
    'GET /api/tokens/{token_id}': [404, 422, 503],
    'GET /api/tokens/{token_id}/history': [404, 422, 503],
    'GET /api/stats': [503],
    'GET /readyz': [503],
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
      if (status === 409 && !path.endsWith('/release')) assert.ok(response.headers?.['retry-after'], `${route} 409 names Retry-After`)
    }
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

test('real answers, success and failure, have a status the document declares and match its schema', async (t) => {
  const adminToken = 'sesame'
  const { app } = await build(t, 'pglite', { poolSize: 2, adminToken })
  const validate = validators(await openapi(app))
  const seen = new Set<string>()

  const check = (method: string, path: string, res: LightMyRequestResponse, expected: number) => {
    assert.equal(res.statusCode, expected, `${method} ${path}: ${res.body}`)
    const v = validate(method, path, res.statusCode)
    assert.ok(v, `${method} ${path} declares ${res.statusCode}`)
    if (res.headers['content-type']?.toString().startsWith('application/json')) {
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
  check('POST', '/api/tokens/allocate', await app.inject({ method: 'POST', url: '/api/tokens/allocate', headers: { 'content-type': 'application/json' }, payload: '{"user_id":' }), 400)
  check('POST', '/api/tokens/allocate', await app.inject({ method: 'POST', url: '/api/tokens/allocate', headers: { 'content-type': 'text/plain' }, payload: a }), 415)
  check('POST', '/api/tokens/allocate', await post(app, '/api/tokens/allocate', { user_id: 'x'.repeat(70_000) }), 413)
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
  check('GET', '/api/pools/{pool}/export', await app.inject({ url: '/api/pools/keys/export', headers: admin }), 200)
  check('DELETE', '/api/pools/{pool}', await app.inject({ method: 'DELETE', url: '/api/pools/keys', headers: admin }), 409)
  check('DELETE', '/api/pools/{pool}', await app.inject({ method: 'DELETE', url: '/api/pools/keys?force=true', headers: admin }), 200)
  check('GET', '/healthz', await app.inject('/healthz'), 200)
  check('GET', '/readyz', await app.inject('/readyz'), 200)
  const metrics = check('GET', '/metrics', await app.inject('/metrics'), 200)
  assert.match(String(metrics.headers['content-type']), /^text\/plain/)
  check('GET', '/openapi.json', await app.inject('/openapi.json'), 200)
  assert.match(String(check('GET', '/', await app.inject('/'), 200).headers['content-type']), /^text\/html/)
  t.diagnostic(`${seen.size} distinct (route, status) answers checked`)
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
