import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { build, json, overlaps, travel } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'

describeEachBackend('POST /api/tokens/allocate', (backend) => {
  test('grants a lease of LEASE_TTL_SECONDS on the least-used token', async (t) => {
    const { app } = await build(t, backend)
    const user = randomUUID()
    const res = await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })
    assert.equal(res.statusCode, 200)
    const { data } = res.json()
    assert.equal(data.pool, 'default')
    assert.equal(data.user_id, user)
    assert.equal(data.renewable_until, data.expires_at)
    assert.match(data.token_id, /^[0-9a-f-]{36}$/)
    assert.equal(data.expires_in_seconds, 120)
    assert.equal(data.evicted_user_id, null)
    assert.match(data.started_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.equal(Date.parse(data.expires_at) - Date.parse(data.started_at), 120_000)
    assert.ok(Number.isInteger(data.lease_id))
  })

  test('is idempotent: the same lease comes back, not extended, not counted again', async (t) => {
    const { app } = await build(t, backend)
    const user = randomUUID()
    const first = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })).json().data
    const again = (await app.inject({ method: 'POST', url: '/api/tokens/activate', ...json({ user_id: user }) })).json().data
    assert.deepEqual({ ...again, expires_in_seconds: 0 }, { ...first, expires_in_seconds: 0 })
    const stats = (await app.inject('/api/stats')).json().data
    assert.equal(stats.allocations_in_window, 1)
    const token = (await app.inject(`/api/tokens/${first.token_id}`)).json().data
    assert.equal(token.usage_count, 1)
  })

  test('spreads leases over the least-used tokens first', async (t) => {
    const { app } = await build(t, backend, { poolSize: 5 })
    const seen = new Set<string>()
    for (let i = 0; i < 5; i++) {
      const { data } = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })).json()
      seen.add(data.token_id)
    }
    assert.equal(seen.size, 5)
    await app.inject({ method: 'POST', url: '/api/tokens/clear' })
    for (let i = 0; i < 5; i++) await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    const list = (await app.inject('/api/tokens')).json()
    assert.deepEqual(list.data.map((tk: { usage_count: number }) => tk.usage_count), [2, 2, 2, 2, 2])
  })

  test('evicts the oldest lease when the pool is full and names the evicted user', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 2 })
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    const la = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: a }) })).json().data
    await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: b }) })
    const lc = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: c }) })).json().data
    assert.equal(lc.evicted_user_id, a)
    assert.equal(lc.token_id, la.token_id)
    assert.ok(lc.lease_id > la.lease_id)
    const history = (await app.inject(`/api/tokens/${la.token_id}/history`)).json().data.usages
    assert.equal(history[0].user_id, c)
    assert.equal(history[0].released_at, null)
    assert.equal(history[1].user_id, a)
    assert.equal(history[1].release_reason, 'evicted')
    assert.equal(history[1].released_at, lc.started_at)
    assert.deepEqual(await overlaps(db), [])
  })

  test('reject policy answers 409 pool_exhausted with Retry-After', async (t) => {
    const { app } = await build(t, backend, { poolSize: 1, onExhausted: 'reject' })
    await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    const res = await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    assert.equal(res.statusCode, 409)
    assert.equal(res.json().error.code, 'pool_exhausted')
    const retry = Number(res.headers['retry-after'])
    assert.ok(retry >= 119 && retry <= 120, `Retry-After ${retry}`)
  })

  test('a lease ends exactly at expires_at, with no sweep having run', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 1 })
    const user = randomUUID()
    const lease = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })).json().data
    await travel(db, 121)
    const token = (await app.inject(`/api/tokens/${lease.token_id}`)).json().data
    assert.equal(token.status, 'available')
    assert.equal(token.current_user_id, null)
    const usage = (await app.inject(`/api/tokens/${lease.token_id}/history`)).json().data.usages[0]
    assert.equal(usage.release_reason, 'expired')
    assert.equal(Date.parse(usage.released_at) - Date.parse(usage.started_at), 120_000)
    // The same user gets a new lease, not the expired one.
    const next = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })).json().data
    assert.notEqual(next.lease_id, lease.lease_id)
    assert.equal(next.expires_in_seconds, 120)
    assert.equal(next.evicted_user_id, null)
  })
})
