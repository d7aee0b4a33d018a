import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
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

  test('rate limiting counts admin attempts without the right: guessing ADMIN_TOKEN meets the limit too', async (t) => {
    const app = await appWith(t, backend, { rateLimitPerMinute: 3, adminToken: 'guess-me' })
    const codes = []
    for (let i = 0; i < 5; i++) {
      const headers = { authorization: `Bearer guess-${i}`, 'content-type': 'application/json' }
      codes.push((await app.inject({ method: 'POST', url: '/api/pools', headers, payload: JSON.stringify({ name: `p${i}` }) })).statusCode)
    }
    assert.deepEqual(codes, [401, 401, 401, 429, 429])
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
      // A caller who sent a token learns it was refused, not that one is needed.
      assert.match(res.json().error.message, authorization === undefined ? /^This needs/ : /^The admin token sent was refused/)
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

  test('with ADMIN_TOKEN, other callers see null user ids and a holder fingerprint; the holder sees its own id; the admin sees every id', async (t) => {
    const adminToken = 'masking-admin-token'
    const app = await appWith(t, backend, { adminToken })
    const admin = { authorization: `Bearer ${adminToken}` }
    const fingerprint = (id: string) => createHash('sha256').update(id).digest('hex').slice(0, 12)
    const user = randomUUID()
    const first = randomUUID()

    // The allocating user sees its own id in its own answers.
    const mine = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: first }) })).json().data
    assert.equal(mine.user_id, first)
    assert.equal(mine.holder, fingerprint(first))
    const lease = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })).json().data
    assert.equal(lease.user_id, user)
    // Upper case in, the service's lower case out, fingerprint of the lower-case id.
    const again = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user.toUpperCase() }) })).json().data
    assert.equal(again.user_id, user)
    assert.equal(again.holder, fingerprint(user))

    // A listing without the admin token: no ids, fingerprints instead.
    const list = (await app.inject('/api/tokens')).json().data
    const held = list.find((x: { id: string }) => x.id === lease.token_id)
    assert.equal(held.current_user_id, null)
    assert.equal(held.holder, fingerprint(user))
    assert.match(held.holder, /^[0-9a-f]{12}$/)
    for (const x of list) {
      assert.equal(x.current_user_id, null)
      if (x.status !== 'active') assert.equal(x.holder, null)
    }
    const one = (await app.inject(`/api/tokens/${lease.token_id}`)).json().data
    assert.equal(one.current_user_id, null)
    assert.equal(one.active_usage.user_id, null)
    assert.equal(one.holder, fingerprint(user))
    assert.equal(one.active_usage.holder, fingerprint(user))
    const [usage] = (await app.inject(`/api/tokens/${lease.token_id}/history`)).json().data.usages
    assert.equal(usage.user_id, null)
    assert.equal(usage.holder, fingerprint(user))

    // An eviction (the pool of 3 is full): the new holder sees itself, not whom it evicted (the oldest, first)...
    await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    const evictor = randomUUID()
    const third = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: evictor }) })).json().data
    assert.equal(third.token_id, mine.token_id)
    assert.equal(third.user_id, evictor)
    assert.equal(third.evicted_user_id, null)
    // ...unless it calls with the admin token.
    const byAdmin = await app.inject({
      method: 'POST', url: '/api/tokens/allocate', headers: { ...admin, 'content-type': 'application/json' }, payload: JSON.stringify({ user_id: randomUUID() }),
    })
    assert.equal(byAdmin.json().data.evicted_user_id, user)

    // The admin sees every id.
    const asAdmin = (await app.inject({ url: '/api/tokens', headers: admin })).json().data
    assert.equal(asAdmin.find((x: { id: string }) => x.id === third.token_id).current_user_id, evictor)
    assert.equal((await app.inject({ url: `/api/tokens/${third.token_id}`, headers: admin })).json().data.active_usage.user_id, evictor)
    const history = (await app.inject({ url: `/api/tokens/${third.token_id}/history`, headers: admin })).json().data.usages
    assert.deepEqual(history.map((u: { user_id: string }) => u.user_id), [evictor, first])
    assert.deepEqual(history.map((u: { holder: string }) => u.holder), [fingerprint(evictor), fingerprint(first)])
    // A wrong admin token is a caller like any other.
    assert.equal((await app.inject({ url: '/api/tokens', headers: { authorization: 'Bearer wrong' } })).json().data
      .find((x: { id: string }) => x.id === third.token_id).current_user_id, null)

    // The export carries the fingerprint in both formats: the CSV has a holder column.
    const ndjson = (await app.inject({ url: '/api/export', headers: admin })).body.trimEnd().split('\n').map((l) => JSON.parse(l))
    assert.ok(ndjson.every((u: { user_id: string, holder: string }) => u.holder === fingerprint(u.user_id)))
    const [header, ...rows] = (await app.inject({ url: '/api/export?format=csv', headers: admin })).body.trimEnd().split('\n')
    assert.equal(header, 'pool,token_id,lease_id,user_id,started_at,expires_at,released_at,release_reason,holder')
    assert.deepEqual(rows.map((r) => r.split(',').at(-1)), ndjson.map((u: { holder: string }) => u.holder))
  })

  test('without ADMIN_TOKEN every id is shown (no fingerprints), and admin routes answer loopback clients only', async (t) => {
    const app = await appWith(t, backend, {})
    const user = randomUUID()
    const lease = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })).json().data
    const seen = (await app.inject({ url: '/api/tokens', remoteAddress: '10.0.0.5' })).json().data.find((x: { id: string }) => x.id === lease.token_id)
    assert.equal(seen.current_user_id, user)
    assert.equal('holder' in seen, false)

    const tokenId = lease.token_id
    const routes: Array<{ method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown }> = [
      { method: 'POST', url: '/api/tokens/clear' },
      { method: 'POST', url: '/api/pools', body: { name: 'remote' } },
      { method: 'PATCH', url: '/api/pools/default', body: { size: 4 } },
      { method: 'DELETE', url: '/api/pools/default' },
      { method: 'GET', url: '/api/export' },
      { method: 'POST', url: `/api/tokens/${tokenId}/disable`, body: {} },
      { method: 'POST', url: `/api/tokens/${tokenId}/enable` },
      { method: 'POST', url: `/api/tokens/${tokenId}/cooldown`, body: { seconds: 5 } },
      { method: 'PATCH', url: `/api/tokens/${tokenId}`, body: { label: 'x' } },
    ]
    for (const remoteAddress of ['10.0.0.5', '192.168.1.20', '::ffff:10.0.0.5', '2001:db8::1']) {
      for (const r of routes) {
        const res = await app.inject({ method: r.method, url: r.url, remoteAddress, ...(r.body === undefined ? {} : json(r.body)) })
        assert.equal(res.statusCode, 401, `${r.method} ${r.url} from ${remoteAddress}: ${res.body}`)
        assert.equal(res.json().error.code, 'unauthorized')
        assert.match(res.json().error.message, /ADMIN_TOKEN/)
        assert.equal(res.headers['www-authenticate'], 'Bearer')
      }
    }
    assert.equal((await app.inject('/api/stats')).json().data.active, 1, 'nothing was cleared')
    // Open routes answer anyone; admin routes answer loopback.
    assert.equal((await app.inject({ url: '/api/stats', remoteAddress: '10.0.0.5' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'POST', url: `/api/tokens/${tokenId}/renew`, remoteAddress: '10.0.0.5', ...json({ user_id: user }) })).json().error.code, 'renewal_limit')
    for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      assert.equal((await app.inject({ method: 'PATCH', url: `/api/tokens/${tokenId}`, remoteAddress, ...json({ label: remoteAddress }) })).statusCode, 200, remoteAddress)
    }
    // A request a proxy on this machine forwarded is not local.
    for (const headers of [{ 'x-forwarded-for': '203.0.113.7' }, { forwarded: 'for=203.0.113.7' }]) {
      const res = await app.inject({ method: 'POST', url: '/api/tokens/clear', remoteAddress: '127.0.0.1', headers })
      assert.equal(res.statusCode, 401, JSON.stringify(headers))
    }
    assert.equal((await app.inject({ method: 'POST', url: '/api/tokens/clear', remoteAddress: '127.0.0.1' })).json().data.cleared_tokens, 1)
  })
})
