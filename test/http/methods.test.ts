import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test, type TestContext } from 'node:test'
import Fastify, { type LightMyRequestResponse } from 'fastify'
import errors from '../../src/http/plugins/errors.js'
import methods from '../../src/http/plugins/methods.js'

/** A few routes shaped like the real ones, on a bare app: the plugin must not depend on app.ts. */
async function tinyApp (t: TestContext, withMethods = true) {
  const app = Fastify()
  await app.register(errors)
  if (withMethods) await app.register(methods)
  const ok = async () => ({ ok: true })
  app.post('/api/tokens/allocate', ok)
  app.get('/api/tokens/:token_id', {
    schema: { params: { type: 'object', properties: { token_id: { type: 'string', format: 'uuid' } }, required: ['token_id'] } },
  }, ok)
  app.get('/api/stats', ok)
  app.get('/api/pools/:pool', ok)
  app.patch('/api/pools/:pool', ok)
  // The same shapes under a pool: a static segment after a parameter.
  app.post('/api/pools/:pool/tokens/allocate', ok)
  app.get('/api/pools/:pool/tokens/:token_id', ok)
  app.get('/docs/*', ok)
  await app.ready()
  t.after(async () => { await app.close() })
  return app
}

function assert405 (res: LightMyRequestResponse, allow: string) {
  assert.equal(res.statusCode, 405, res.body)
  assert.equal(res.headers.allow, allow)
  const body = res.json()
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'message'])
  assert.equal(body.error.code, 'method_not_allowed')
  assert.equal(body.error.details, null)
  assert.equal(typeof body.error.message, 'string')
}

describe('a known path asked with another method is 405 with Allow', () => {
  test('a static path that a parametric route would catch', async (t) => {
    const app = await tinyApp(t)
    // Without the plugin this is GET /api/tokens/:token_id with token_id "allocate": a 422 about a UUID.
    const res = await app.inject({ method: 'GET', url: '/api/tokens/allocate?x=1' })
    assert405(res, 'POST')
    assert.match(res.json().error.message, /GET .*\/api\/tokens\/allocate.*POST/)
    assert405(await app.inject({ method: 'GET', url: '/api/pools/blue/tokens/allocate' }), 'POST')
    const head = await app.inject({ method: 'HEAD', url: '/api/tokens/allocate' })
    assert.equal(head.statusCode, 405)
    assert.equal(head.headers.allow, 'POST')
  })

  test('paths no route takes for this method', async (t) => {
    const app = await tinyApp(t)
    assert405(await app.inject({ method: 'DELETE', url: '/api/stats' }), 'GET')
    assert405(await app.inject({ method: 'POST', url: '/api/stats?y=2' }), 'GET')
    assert405(await app.inject({ method: 'DELETE', url: '/api/pools/blue' }), 'GET, PATCH')
    assert405(await app.inject({ method: 'PUT', url: `/api/tokens/${randomUUID()}` }), 'GET')
    assert405(await app.inject({ method: 'PUT', url: '/api/pools/blue/tokens/allocate' }), 'POST')
    assert405(await app.inject({ method: 'DELETE', url: '/docs/any/file.js' }), 'GET')
  })

  test('what is routed is unchanged; unknown paths stay 404', async (t) => {
    const app = await tinyApp(t)
    assert.equal((await app.inject({ method: 'POST', url: '/api/tokens/allocate' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'GET', url: `/api/tokens/${randomUUID()}` })).statusCode, 200)
    assert.equal((await app.inject({ method: 'GET', url: '/api/tokens/not-a-uuid' })).statusCode, 422)
    assert.equal((await app.inject({ method: 'GET', url: '/api/stats' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'HEAD', url: '/api/stats' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'PATCH', url: '/api/pools/blue' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'POST', url: '/api/pools/blue/tokens/allocate' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'GET', url: `/api/pools/blue/tokens/${randomUUID()}` })).statusCode, 200)
    assert.equal((await app.inject({ method: 'GET', url: '/docs/any/file.js' })).statusCode, 200)
    for (const [method, url] of [['GET', '/api/nothing'], ['DELETE', '/api/tokens/a/b'], ['GET', '/api/stats/'], ['DELETE', '/api/pools/']] as const) {
      const res = await app.inject({ method, url })
      assert.equal(res.statusCode, 404, `${method} ${url}`)
      assert.equal(res.json().error.code, 'not_found')
      assert.equal(res.headers.allow, undefined)
    }
  })

  test('methodsAllowedFor names the methods of a concrete path', async (t) => {
    const app = await tinyApp(t)
    assert.deepEqual(app.methodsAllowedFor('/api/pools/blue'), ['GET', 'PATCH'])
    // A static path is its own resource, even where a parametric route also matches it.
    assert.deepEqual(app.methodsAllowedFor('/api/tokens/allocate'), ['POST'])
    assert.deepEqual(app.methodsAllowedFor('/api/pools/blue/tokens/allocate'), ['POST'])
    assert.deepEqual(app.methodsAllowedFor('/api/stats'), ['GET'])
    assert.deepEqual(app.methodsAllowedFor('/docs/'), ['GET'])
    assert.deepEqual(app.methodsAllowedFor('/nowhere'), [])
  })

  test('errors alone, without the plugin, still answers a plain 404', async (t) => {
    const app = await tinyApp(t, false)
    const res = await app.inject({ method: 'DELETE', url: '/api/stats' })
    assert.equal(res.statusCode, 404)
    assert.equal(res.json().error.code, 'not_found')
  })
})
