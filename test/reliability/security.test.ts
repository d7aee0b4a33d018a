import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import { buildApp } from '../../src/http/app.js'
import { TokenPool } from '../../src/pool/pool.js'
import { json } from '../helpers/app.js'
import { describeEachBackend, testDb, type Backend } from '../helpers/db.js'

async function appWith (t: TestContext, backend: Backend, deps: { rateLimitPerMinute?: number, adminToken?: string }) {
  const db = await testDb(t, backend)
  const pool = new TokenPool(db, { defaultPool: { size: 3, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
  await pool.start()
  const app = await buildApp({ pool, ...deps })
  t.after(async () => { await app.close() })
  return app
}

describeEachBackend('security', (backend) => {
  test('security headers on the API, with a CSP that lets the same-origin dashboard and docs run', async (t) => {
    const app = await appWith(t, backend, {})
    for (const url of ['/api/stats', '/healthz', '/no/such/route']) {
      const res = await app.inject(url)
      assert.equal(res.headers['x-content-type-options'], 'nosniff', url)
      assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN', url)
      const csp = String(res.headers['content-security-policy'])
      assert.match(csp, /default-src 'self'/)
      assert.match(csp, /script-src 'self'(;|$)/, 'no inline or foreign scripts')
      assert.doesNotMatch(csp, /upgrade-insecure-requests/, 'plain HTTP keeps working')
      assert.equal(res.headers['x-powered-by'], undefined)
    }
  })

  test('rate limiting: 429 rate_limited with Retry-After in the contract\'s shape; health checks are never limited', async (t) => {
    const app = await appWith(t, backend, { rateLimitPerMinute: 3 })
    for (let i = 0; i < 3; i++) assert.equal((await app.inject('/api/stats')).statusCode, 200)
    const before = (await app.inject('/healthz')).statusCode
    const res = await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    assert.equal(res.statusCode, 429)
    assert.equal(res.json().error.code, 'rate_limited')
    assert.equal(typeof res.json().error.message, 'string')
    const retry = Number(res.headers['retry-after'])
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`)
    assert.equal(before, 200)
    assert.equal((await app.inject('/healthz')).statusCode, 200)
    assert.equal((await app.inject('/readyz')).statusCode, 200)
    // Another client (another IP) is not limited by the first one's traffic.
    assert.equal((await app.inject({ url: '/api/stats', remoteAddress: '10.0.0.9' })).statusCode, 200)
  })

  test('off by default: a burst goes through', async (t) => {
    const app = await appWith(t, backend, {})
    const codes = await Promise.all(Array.from({ length: 50 }, async () => (await app.inject('/api/stats')).statusCode))
    assert.deepEqual(new Set(codes), new Set([200]))
  })

  test('ADMIN_TOKEN guards clear; a wrong, short, long or missing token is 401 and clears nothing', async (t) => {
    const app = await appWith(t, backend, { adminToken: 's3cret-token' })
    await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    for (const authorization of [undefined, 'Bearer', 'Bearer s3cret-toke', 'Bearer s3cret-token-and-more', 'Bearer S3cret-token', 'Basic s3cret-token']) {
      const res = await app.inject({ method: 'POST', url: '/api/tokens/clear', headers: authorization === undefined ? {} : { authorization } })
      assert.equal(res.statusCode, 401, String(authorization))
      assert.equal(res.json().error.code, 'unauthorized')
    }
    assert.equal((await app.inject('/api/stats')).json().data.active, 1)
    const ok = await app.inject({ method: 'POST', url: '/api/tokens/clear', headers: { authorization: 'Bearer s3cret-token' } })
    assert.equal(ok.json().data.cleared_tokens, 1)
  })

  test('a body over the limit is 413 payload_too_large, and allocates nothing', async (t) => {
    const app = await appWith(t, backend, {})
    const res = await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID(), pad: 'x'.repeat(100_000) }) })
    assert.equal(res.statusCode, 413)
    assert.equal(res.json().error.code, 'payload_too_large')
    assert.equal((await app.inject('/api/stats')).json().data.active, 0)
  })
})
