import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import type { App } from '../../src/http/app.js'
import { build, overlaps, travel } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'
import { assertError } from '../helpers/errors.js'

type Res = Awaited<ReturnType<App['inject']>>

/** The calls these tests make, as an admin (loopback, or with the admin token when one is given). */
function client (app: App, adminToken?: string) {
  const auth: Record<string, string> = adminToken === undefined ? {} : { authorization: `Bearer ${adminToken}` }
  const send = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown): Promise<Res> =>
    await app.inject({
      method,
      url,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    })
  return {
    send,
    create: async (name: string, settings: Record<string, unknown> = {}) => await send('POST', '/api/pools', { name, ...settings }),
    patch: async (name: string, changes: Record<string, unknown>) => await send('PATCH', `/api/pools/${name}`, changes),
    remove: async (name: string, force = false) => await send('DELETE', `/api/pools/${name}${force ? '?force=true' : ''}`),
    allocate: async (pool: string, user = randomUUID()) => await send('POST', `/api/pools/${pool}/tokens/allocate`, { user_id: user }),
    ids: async (pool: string): Promise<string[]> => (await send('GET', `/api/pools/${pool}/tokens`)).json().data.map((t: { id: string }) => t.id),
  }
}

const DEFAULTS = {
  size: 100,
  lease_ttl_seconds: 120,
  lease_max_seconds: 120,
  usage_window_hours: 24,
  on_exhausted: 'evict_oldest',
  max_wait_seconds: 60,
  cooldown_max_seconds: 3600,
  user_quota: null,
}

describeEachBackend('pools over HTTP', (backend) => {
  test('create: one POST makes a pool with the default settings; names are checked; a taken name is 409 pool_exists', async (t) => {
    const { app, db } = await build(t, backend)
    const c = client(app)
    const res = await c.create('keys')
    assert.equal(res.statusCode, 201, res.body)
    assert.equal(res.headers.location, '/api/pools/keys')
    const created = res.json().data
    assert.deepEqual(created, { name: 'keys', ...DEFAULTS, total: 100, active: 0, available: 100, cooling: 0, disabled: 0, waiting: 0 })
    assert.deepEqual((await c.send('GET', '/api/pools/keys')).json().data, created)
    assert.equal((await c.ids('keys')).length, 100)

    // Settings given are kept as given, fractions included; lease_max_seconds defaults to the TTL.
    const custom = (await c.create('0-seats_b', { size: 3, lease_ttl_seconds: 0.5, usage_window_hours: 0.25, on_exhausted: 'reject', user_quota: 0 })).json().data
    assert.deepEqual(custom, {
      name: '0-seats_b',
      ...DEFAULTS,
      size: 3,
      lease_ttl_seconds: 0.5,
      lease_max_seconds: 0.5,
      usage_window_hours: 0.25,
      on_exhausted: 'reject',
      user_quota: 0,
      total: 3,
      active: 0,
      available: 3,
      cooling: 0,
      disabled: 0,
      waiting: 0,
    })
    const names = (await c.send('GET', '/api/pools')).json().data.map((p: { name: string }) => p.name)
    assert.deepEqual(names, ['0-seats_b', 'default', 'keys'])

    const before = await db.query('SELECT name FROM pools ORDER BY name')
    assertError(await c.create('keys', { size: 2 }), 409, 'pool_exists')
    assertError(await c.create('default'), 409, 'pool_exists')
    for (const bad of ['Bad', '-x', '_x', 'a'.repeat(64), '', 'a b', 'ä', 'a.b']) {
      assertError(await c.create(bad), 422, 'validation_failed', 'name')
    }
    assertError(await c.send('POST', '/api/pools', { size: 3 }), 422, 'validation_failed', 'name')
    assertError(await c.create('fine', { size: 0 }), 422, 'validation_failed', 'size')
    assertError(await c.create('fine', { size: 1_000_001 }), 422, 'validation_failed', 'size')
    assertError(await c.create('fine', { lease_ttl_seconds: 0 }), 422, 'validation_failed', 'lease_ttl_seconds')
    // Under 1 ms a lease could end where it starts (times are kept to the µs) and a window be empty.
    assertError(await c.create('fine', { lease_ttl_seconds: 1e-9 }), 422, 'validation_failed', 'lease_ttl_seconds')
    assertError(await c.create('fine', { lease_ttl_seconds: 0.0009 }), 422, 'validation_failed', 'lease_ttl_seconds')
    assertError(await c.create('fine', { lease_ttl_seconds: 0.0005, lease_max_seconds: 0.0009 }), 422, 'validation_failed')
    const tooShort = await c.create('fine', { usage_window_hours: 1e-10 })
    assertError(tooShort, 422, 'validation_failed', 'usage_window_hours')
    assert.equal(tooShort.json().error.message, 'usage_window_hours must be >= 0.000000278', 'the limit as a person writes it')
    assertError(await c.create('fine', { on_exhausted: 'panic' }), 422, 'validation_failed', 'on_exhausted')
    assertError(await c.create('fine', { cooldown_max_seconds: 604_801 }), 422, 'validation_failed', 'cooldown_max_seconds')
    assertError(await c.create('fine', { cooldown_max_seconds: 0.5 }), 422, 'validation_failed', 'cooldown_max_seconds')
    assertError(await c.create('fine', { max_wait_seconds: 301 }), 422, 'validation_failed', 'max_wait_seconds')
    assertError(await c.create('fine', { user_quota: -1 }), 422, 'validation_failed', 'user_quota')
    // lease_max_seconds below lease_ttl_seconds, given or by default.
    assertError(await c.create('fine', { lease_ttl_seconds: 60, lease_max_seconds: 30 }), 422, 'validation_failed', 'lease_max_seconds')
    assertError(await c.create('fine', { lease_max_seconds: 60 }), 422, 'validation_failed', 'lease_max_seconds')
    assert.deepEqual(await db.query('SELECT name FROM pools ORDER BY name'), before, 'a refused create makes nothing')
    // A field that isn't a setting is a 422 naming it, not a silently ignored typo.
    assertError(await c.create('fine', { sise: 5 }), 422, 'validation_failed', 'sise')
    assertError(await c.send('PATCH', '/api/pools/keys', { sise: 5 }), 422, 'validation_failed', 'sise')
    // A pool's own name may come back in a change; another name is a 422 (no renaming).
    assertError(await c.send('PATCH', '/api/pools/keys', { name: 'locks', size: 5 }), 422, 'validation_failed', 'name')
    assert.deepEqual(await db.query('SELECT name FROM pools ORDER BY name'), before, 'a refused create makes nothing')
    assert.equal((await c.send('PATCH', '/api/pools/keys', { name: 'keys', size: 4 })).json().data.size, 4)
    // A "__proto__" key is valid JSON: dropped, not a 400.
    assert.equal((await c.send('POST', '/api/pools', JSON.parse('{"name": "proto", "size": 1, "__proto__": {"size": 9}}'))).statusCode, 201)
    // The longest name is 63 characters.
    assert.equal((await c.create('a'.repeat(63), { size: 1 })).statusCode, 201)
    // Bad names in a path are a 422 naming `pool`.
    for (const bad of ['Bad', '-x', 'a'.repeat(64), 'a'.repeat(200)]) {
      assertError(await c.send('GET', `/api/pools/${bad}`), 422, 'validation_failed', 'pool')
      assertError(await c.send('GET', `/api/pools/${bad}/tokens`), 422, 'validation_failed', 'pool')
      assertError(await c.allocate(bad), 422, 'validation_failed', 'pool')
    }
    // 1 ms is allowed, and is a real lease of 1 ms in a real window; the table refuses less too.
    assert.equal((await c.create('tiny', { size: 1, lease_ttl_seconds: 0.001, usage_window_hours: 0.001 / 3600 })).statusCode, 201)
    const tiny = (await c.allocate('tiny')).json().data
    assert.equal(Date.parse(tiny.expires_at) - Date.parse(tiny.started_at), 1)
    await assert.rejects(db.query('UPDATE pools SET lease_ttl_seconds = 1e-9, lease_max_seconds = 1e-9 WHERE name = $1', ['tiny']))
    await assert.rejects(db.query('UPDATE pools SET usage_window_hours = 1e-10 WHERE name = $1', ['tiny']))
    assert.equal((await c.send('DELETE', '/api/pools/tiny?force=true')).statusCode, 200)
  })

  test('an unknown pool is 404 not_found on every pool route', async (t) => {
    const { app } = await build(t, backend)
    const c = client(app)
    const user = randomUUID()
    const token = (await c.ids('default'))[0]!
    const routes: Array<[Parameters<typeof c.send>[0], string, unknown?]> = [
      ['GET', '/api/pools/nope'],
      ['PATCH', '/api/pools/nope', { size: 3 }],
      ['DELETE', '/api/pools/nope'],
      ['DELETE', '/api/pools/nope?force=true'],
      ['POST', '/api/pools/nope/tokens/allocate', { user_id: user }],
      ['POST', '/api/pools/nope/tokens/activate', { user_id: user }],
      ['GET', '/api/pools/nope/tokens'],
      ['GET', '/api/pools/nope/tokens?limit=5'],
      ['POST', '/api/pools/nope/tokens/clear'],
      ['GET', '/api/pools/nope/stats'],
      ['GET', '/api/pools/nope/export'],
      ['GET', `/api/pools/nope/tokens/${token}`],
      ['PATCH', `/api/pools/nope/tokens/${token}`, { label: 'x' }],
      ['GET', `/api/pools/nope/tokens/${token}/history`],
      ['POST', `/api/pools/nope/tokens/${token}/release`, { user_id: user }],
      ['POST', `/api/pools/nope/tokens/${token}/renew`, { user_id: user }],
      ['POST', `/api/pools/nope/tokens/${token}/cooldown`, { seconds: 5 }],
      ['POST', `/api/pools/nope/tokens/${token}/disable`, {}],
      ['POST', `/api/pools/nope/tokens/${token}/enable`],
      ['GET', '/api/events?pool=nope'],
    ]
    for (const [method, url, body] of routes) {
      const res = await c.send(method, url, body)
      assertError(res, 404, 'not_found')
      assert.notEqual(res.json().error.message, '', `${method} ${url}`)
    }
    // The default pool's token is untouched by all of that.
    const view = (await c.send('GET', `/api/tokens/${token}`)).json().data
    assert.equal(view.status, 'available')
    assert.equal(view.label, null)
  })

  test('PATCH resizes: growing adds ids, shrinking keeps the first ones, growing again brings the same ids back', async (t) => {
    const { app } = await build(t, backend)
    const c = client(app)
    assert.equal((await c.create('grow', { size: 5 })).statusCode, 201)
    const five = await c.ids('grow')
    assert.equal(five.length, 5)

    const grown = await c.patch('grow', { size: 8 })
    assert.equal(grown.statusCode, 200, grown.body)
    assert.equal(grown.json().data.size, 8)
    assert.equal(grown.json().data.total, 8)
    const eight = await c.ids('grow')
    assert.deepEqual(eight.slice(0, 5), five)
    assert.equal(new Set(eight).size, 8)

    const shrunk = (await c.patch('grow', { size: 3 })).json().data
    assert.equal(shrunk.size, 3)
    assert.equal(shrunk.total, 3)
    assert.deepEqual(await c.ids('grow'), five.slice(0, 3))
    // A retired token is a 404 by id; its history still answers.
    assertError(await c.send('GET', `/api/tokens/${eight[6]}`), 404, 'not_found')
    assert.equal((await c.send('GET', `/api/tokens/${eight[6]}/history`)).statusCode, 200)
    assertError(await c.send('GET', `/api/pools/grow/tokens/${eight[6]}`), 404, 'not_found')

    assert.equal((await c.patch('grow', { size: 8 })).json().data.total, 8)
    assert.deepEqual(await c.ids('grow'), eight)
    assert.equal((await c.patch('grow', { size: 10 })).json().data.total, 10)
    assert.deepEqual((await c.ids('grow')).slice(0, 8), eight)

    // Other settings change alone; null removes a quota.
    const quota = (await c.patch('grow', { user_quota: 50, lease_ttl_seconds: 30, lease_max_seconds: 3600 })).json().data
    assert.deepEqual({ ...quota }, {
      name: 'grow',
      ...DEFAULTS,
      size: 10,
      lease_ttl_seconds: 30,
      lease_max_seconds: 3600,
      user_quota: 50,
      total: 10,
      active: 0,
      available: 10,
      cooling: 0,
      disabled: 0,
      waiting: 0,
    })
    // null removes a quota (it must not read as 0, which would refuse every new lease), and 0 stays 0.
    assert.equal((await c.patch('grow', { user_quota: 0 })).json().data.user_quota, 0)
    assert.equal((await c.patch('grow', { user_quota: null })).json().data.user_quota, null)
    assert.equal((await c.allocate('grow')).statusCode, 200)

    // The result may never have lease_max_seconds below lease_ttl_seconds; a refusal changes nothing.
    const settled = (await c.send('GET', '/api/pools/grow')).json().data
    assertError(await c.patch('grow', { lease_max_seconds: 10 }), 422, 'validation_failed', 'lease_max_seconds')
    assertError(await c.patch('grow', { lease_ttl_seconds: 3601 }), 422, 'validation_failed', 'lease_max_seconds')
    assertError(await c.patch('grow', {}), 422, 'validation_failed')
    assertError(await c.patch('grow', { size: 0 }), 422, 'validation_failed', 'size')
    assert.deepEqual((await c.send('GET', '/api/pools/grow')).json().data, settled)

    // A cap left at its default (the TTL) follows a new TTL; a cap set apart stays.
    assert.equal((await c.create('follow', { lease_ttl_seconds: 30 })).json().data.lease_max_seconds, 30)
    const followed = (await c.patch('follow', { lease_ttl_seconds: 200 })).json().data
    assert.deepEqual([followed.lease_ttl_seconds, followed.lease_max_seconds], [200, 200])
    const kept = (await c.patch('grow', { lease_ttl_seconds: 60 })).json().data
    assert.deepEqual([kept.lease_ttl_seconds, kept.lease_max_seconds], [60, 3600])

    // The default pool belongs to the environment.
    const before = (await c.send('GET', '/api/pools/default')).json().data
    assertError(await c.patch('default', { size: 3 }), 409, 'managed_by_config')
    assertError(await c.remove('default'), 409, 'managed_by_config')
    assertError(await c.remove('default', true), 409, 'managed_by_config')
    assert.deepEqual((await c.send('GET', '/api/pools/default')).json().data, before)
  })

  test('DELETE: 409 pool_busy while a lease is active; ?force=true ends it (cleared); the pool is gone, its histories stay; recreating brings the same ids back', async (t) => {
    const { app } = await build(t, backend)
    const c = client(app)
    assert.equal((await c.create('temp', { size: 4 })).statusCode, 201)
    const ids = await c.ids('temp')
    const lease = (await c.allocate('temp')).json().data
    assert.equal(lease.pool, 'temp')

    assertError(await c.remove('temp'), 409, 'pool_busy')
    assert.equal((await c.send('GET', `/api/tokens/${lease.token_id}`)).json().data.status, 'active', 'a refused delete ends nothing')

    const gone = await c.remove('temp', true)
    assert.equal(gone.statusCode, 200, gone.body)
    assert.deepEqual(gone.json(), { data: { name: 'temp', deleted: true } })

    assert.deepEqual((await c.send('GET', '/api/pools')).json().data.map((p: { name: string }) => p.name), ['default'])
    assertError(await c.send('GET', '/api/pools/temp'), 404, 'not_found')
    assertError(await c.send('GET', '/api/pools/temp/tokens'), 404, 'not_found')
    assertError(await c.send('GET', '/api/pools/temp/stats'), 404, 'not_found')
    assertError(await c.send('GET', '/api/pools/temp/export'), 404, 'not_found')
    assertError(await c.allocate('temp'), 404, 'not_found')
    assertError(await c.send('GET', `/api/tokens/${lease.token_id}`), 404, 'not_found')
    assertError(await c.send('POST', `/api/tokens/${lease.token_id}/release`, { user_id: lease.user_id }), 404, 'not_found')
    assertError(await c.remove('temp'), 404, 'not_found')

    // The ended lease is in its token's history, reason cleared.
    const history = await c.send('GET', `/api/tokens/${lease.token_id}/history`)
    assert.equal(history.statusCode, 200)
    const [usage] = history.json().data.usages
    assert.equal(usage.lease_id, lease.lease_id)
    assert.equal(usage.release_reason, 'cleared')
    assert.ok(Date.parse(usage.released_at) >= Date.parse(lease.started_at))

    // A pool without leases is deleted without force.
    assert.equal((await c.create('empty', { size: 1 })).statusCode, 201)
    assert.equal((await c.remove('empty')).statusCode, 200)

    // The same name again: the same token ids, in the same order, free and counted afresh.
    const again = await c.create('temp', { size: 4, on_exhausted: 'reject' })
    assert.equal(again.statusCode, 201, again.body)
    assert.equal(again.json().data.on_exhausted, 'reject')
    assert.equal(again.json().data.active, 0)
    assert.deepEqual(await c.ids('temp'), ids)
    assert.equal((await c.send('GET', `/api/tokens/${lease.token_id}`)).json().data.status, 'available')
    const next = (await c.allocate('temp')).json().data
    assert.ok(next.lease_id > lease.lease_id, 'lease ids never repeat')
  })

  test('two pools side by side: their own TTLs and policies; a user holds one lease in each; eviction in one never touches the other', async (t) => {
    const { app, db } = await build(t, backend)
    const c = client(app)
    assert.equal((await c.create('fast', { size: 2, lease_ttl_seconds: 30 })).statusCode, 201)
    assert.equal((await c.create('strict', { size: 1, lease_ttl_seconds: 60, on_exhausted: 'reject' })).statusCode, 201)
    const u = randomUUID()
    const inFast = (await c.allocate('fast', u)).json().data
    const inStrict = (await c.allocate('strict', u)).json().data
    assert.equal(inFast.pool, 'fast')
    assert.equal(inStrict.pool, 'strict')
    assert.equal(Date.parse(inFast.expires_at) - Date.parse(inFast.started_at), 30_000)
    assert.equal(Date.parse(inStrict.expires_at) - Date.parse(inStrict.started_at), 60_000)
    assert.notEqual(inFast.token_id, inStrict.token_id)
    assert.ok(inStrict.lease_id > inFast.lease_id, 'one lease id sequence for every pool')
    // Allocating again in each pool gives back that pool's lease.
    assert.equal((await c.allocate('fast', u)).json().data.lease_id, inFast.lease_id)
    assert.equal((await c.allocate('strict', u)).json().data.lease_id, inStrict.lease_id)
    // The default pool is a third, separate one.
    const inDefault = (await c.send('POST', '/api/tokens/allocate', { user_id: u })).json().data
    assert.equal(inDefault.pool, 'default')

    // fast is full after one more; the next evicts u's lease there, the oldest.
    await c.allocate('fast')
    const evicting = (await c.allocate('fast')).json().data
    assert.equal(evicting.evicted_user_id, u)
    assert.equal(evicting.token_id, inFast.token_id)
    // u's leases in the other pools are untouched.
    const strictToken = (await c.send('GET', `/api/tokens/${inStrict.token_id}`)).json().data
    assert.equal(strictToken.status, 'active')
    assert.equal(strictToken.active_usage.lease_id, inStrict.lease_id)
    assert.equal((await c.send('GET', `/api/tokens/${inDefault.token_id}`)).json().data.active_usage.lease_id, inDefault.lease_id)

    // strict refuses instead of evicting, with Retry-After to its lease's end.
    const refused = await c.allocate('strict')
    assertError(refused, 409, 'pool_exhausted')
    const retry = Number(refused.headers['retry-after'])
    assert.ok(retry >= 59 && retry <= 60, `Retry-After ${retry}`)
    assert.equal((await c.send('GET', `/api/tokens/${inStrict.token_id}`)).json().data.active_usage.lease_id, inStrict.lease_id)

    // Each pool's counts and stats are its own.
    const [fast, strict] = [(await c.send('GET', '/api/pools/fast')).json().data, (await c.send('GET', '/api/pools/strict')).json().data]
    assert.deepEqual([fast.active, fast.available, strict.active, strict.available], [2, 0, 1, 0])
    assert.equal((await c.send('GET', '/api/pools/fast/stats')).json().data.allocations_in_window, 3)
    assert.equal((await c.send('GET', '/api/pools/strict/stats')).json().data.allocations_in_window, 1)
    assert.equal((await c.send('GET', '/api/stats')).json().data.allocations_in_window, 1)

    // Time runs the same for both: after 30 s fast's leases are over, strict's not yet.
    await travel(db, 31)
    assert.equal((await c.send('GET', '/api/pools/fast')).json().data.active, 0)
    assert.equal((await c.send('GET', '/api/pools/strict')).json().data.active, 1)
    // Clearing one pool ends only its leases.
    assert.deepEqual((await c.send('POST', '/api/pools/strict/tokens/clear')).json(), { data: { cleared_tokens: 1 } })
    assert.equal((await c.send('GET', `/api/tokens/${inDefault.token_id}`)).json().data.status, 'active')
    assert.deepEqual(await overlaps(db), [])
  })

  test('a token of pool A under /api/pools/B/… is 404; under /api/pools/A/… it works', async (t) => {
    const { app } = await build(t, backend)
    const c = client(app)
    await c.create('a', { size: 2, lease_max_seconds: 600 })
    await c.create('b', { size: 2 })
    const lease = (await c.allocate('a')).json().data
    const id = lease.token_id
    const user = lease.user_id
    const wrong: Array<[Parameters<typeof c.send>[0], string, unknown?]> = [
      ['GET', `/api/pools/b/tokens/${id}`],
      ['GET', `/api/pools/b/tokens/${id}/history`],
      ['PATCH', `/api/pools/b/tokens/${id}`, { label: 'x' }],
      ['POST', `/api/pools/b/tokens/${id}/release`, { user_id: user }],
      ['POST', `/api/pools/b/tokens/${id}/renew`, { user_id: user }],
      ['POST', `/api/pools/b/tokens/${id}/cooldown`, { user_id: user, seconds: 5 }],
      ['POST', `/api/pools/b/tokens/${id}/cooldown`, { seconds: 5 }],
      ['POST', `/api/pools/b/tokens/${id}/disable`, {}],
      ['POST', `/api/pools/b/tokens/${id}/enable`],
      ['GET', `/api/pools/default/tokens/${id}`],
    ]
    for (const [method, url, body] of wrong) assertError(await c.send(method, url, body), 404, 'not_found')
    // Nothing happened to the token or its lease.
    const view = (await c.send('GET', `/api/pools/a/tokens/${id}`)).json().data
    assert.equal(view.status, 'active')
    assert.equal(view.label, null)
    assert.equal(view.active_usage.lease_id, lease.lease_id)
    assert.equal((await c.send('GET', `/api/pools/a/tokens/${id}/history`)).json().data.usages.length, 1)
    assert.equal((await c.send('POST', `/api/pools/a/tokens/${id}/renew`, { user_id: user })).statusCode, 200)
    assert.equal((await c.send('POST', `/api/pools/a/tokens/${id}/release`, { user_id: user })).statusCode, 200)
  })

  test('list paging with limit and cursor covers every token once, in order; the streamed list is the pages joined', async (t) => {
    const { app } = await build(t, backend)
    const c = client(app)
    await c.create('paged', { size: 23 })
    for (let i = 0; i < 4; i++) await c.allocate('paged')
    const free = JSON.parse((await c.send('GET', '/api/pools/paged/tokens?status=available')).body).data.map((x: { id: string }) => x.id)
    const [cooled, disabled] = [free[10], free[11]]
    assert.equal((await c.send('POST', `/api/tokens/${cooled}/cooldown`, { seconds: 60 })).statusCode, 200)
    assert.equal((await c.send('POST', `/api/tokens/${disabled}/disable`, { reason: 'gone' })).statusCode, 200)

    const streamed = await c.send('GET', '/api/pools/paged/tokens')
    assert.equal(streamed.statusCode, 200)
    const whole = JSON.parse(streamed.body)
    assert.deepEqual(Object.keys(whole), ['data', 'meta'])
    assert.equal(whole.meta.next_cursor, null)
    assert.equal(whole.data.length, 23)
    const counts = { total: 23, active: 4, available: 17, cooling: 1, disabled: 1, waiting: 0 }
    for (const [k, v] of Object.entries(counts)) assert.equal(whole.meta[k], v, k)

    for (const limit of [1, 5, 7, 23, 100]) {
      const pages: unknown[][] = []
      let cursor: string | null = null
      do {
        const res: Res = await c.send('GET', `/api/pools/paged/tokens?limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`)
        assert.equal(res.statusCode, 200, res.body)
        const body = res.json()
        assert.ok(body.data.length <= limit)
        for (const [k, v] of Object.entries(counts)) assert.equal(body.meta[k], v, `page meta counts the whole pool: ${k}`)
        pages.push(body.data)
        cursor = body.meta.next_cursor
      } while (cursor !== null)
      assert.equal(pages.length, Math.max(1, Math.ceil(23 / limit)), `limit ${limit}`)
      assert.deepEqual(pages.flat(), whole.data, `limit ${limit}: the pages joined are the whole list`)
    }

    // With a status filter: only those tokens, still in order, still paged.
    const available = whole.data.filter((x: { status: string }) => x.status === 'available')
    const seen: unknown[] = []
    let cursor: string | null = null
    do {
      const body: { data: unknown[], meta: { next_cursor: string | null } } = (await c.send('GET', `/api/pools/paged/tokens?status=available&limit=4${cursor === null ? '' : `&cursor=${cursor}`}`)).json()
      seen.push(...body.data)
      cursor = body.meta.next_cursor
    } while (cursor !== null)
    assert.deepEqual(seen, available)
    assert.deepEqual(JSON.parse((await c.send('GET', '/api/pools/paged/tokens?status=cooling')).body).data.map((x: { id: string }) => x.id), [cooled])
    assert.deepEqual(JSON.parse((await c.send('GET', '/api/pools/paged/tokens?status=disabled')).body).data.map((x: { id: string }) => x.id), [disabled])
    assertError(await c.send('GET', '/api/pools/paged/tokens?limit=10001'), 422, 'validation_failed', 'limit')
    assertError(await c.send('GET', '/api/pools/paged/tokens?limit=0'), 422, 'validation_failed', 'limit')
    assertError(await c.send('GET', '/api/pools/paged/tokens?cursor=bogus'), 422, 'validation_failed', 'cursor')
    // A cursor pages the list that gave it out: another pool's is refused, not read as a position.
    const paged = (await c.send('GET', '/api/pools/paged/tokens?limit=2')).json().meta.next_cursor
    assertError(await c.send('GET', `/api/pools/default/tokens?limit=2&cursor=${paged}`), 422, 'validation_failed', 'cursor')
    assert.equal((await c.send('GET', `/api/pools/paged/tokens?limit=2&cursor=${paged}`)).statusCode, 200)
  })

  test('stats: least_used_limit caps the list, least_used_count counts every token at the minimum', async (t) => {
    const { app } = await build(t, backend)
    const c = client(app)
    await c.create('s', { size: 6 })
    const ids = await c.ids('s')
    const used = [(await c.allocate('s')).json().data.token_id, (await c.allocate('s')).json().data.token_id]
    const unused = ids.filter((id) => !used.includes(id))

    const all = (await c.send('GET', '/api/pools/s/stats')).json().data
    assert.equal(all.pool, 's')
    assert.equal(all.least_used_count, 4)
    assert.deepEqual(all.least_used, unused.map((id) => ({ token_id: id, usage_count: 0 })))
    assert.deepEqual(all.usage_count, { min: 0, max: 1, mean: 2 / 6 })
    assert.equal(all.allocations_in_window, 2)

    const capped = (await c.send('GET', '/api/pools/s/stats?least_used_limit=3')).json().data
    assert.equal(capped.least_used_count, 4)
    assert.deepEqual(capped.least_used, unused.slice(0, 3).map((id) => ({ token_id: id, usage_count: 0 })))
    assert.equal((await c.send('GET', '/api/pools/s/stats?least_used_limit=1')).json().data.least_used.length, 1)
    assert.equal((await c.send('GET', '/api/pools/s/stats?least_used_limit=10000')).json().data.least_used.length, 4)
    for (const bad of ['0', '10001', 'x', '1.5']) {
      assertError(await c.send('GET', `/api/pools/s/stats?least_used_limit=${bad}`), 422, 'validation_failed', 'least_used_limit')
    }
  })

  test('export: NDJSON and CSV carry every usage once, oldest first, and no two usages of a token overlap', async (t) => {
    const { app, db } = await build(t, backend)
    const c = client(app)
    await c.create('audit', { size: 2 })
    await c.create('other', { size: 1 })
    await c.allocate('other')
    const leases = []
    for (let i = 0; i < 7; i++) leases.push((await c.allocate('audit')).json().data) // evictions from the third on
    const last = leases.at(-1)!
    await c.send('POST', `/api/tokens/${last.token_id}/release`, { user_id: last.user_id })
    leases.push((await c.allocate('audit')).json().data)
    await travel(db, 200) // the open leases run out, unswept
    leases.push((await c.allocate('audit')).json().data)

    const nd = await c.send('GET', '/api/pools/audit/export')
    assert.equal(nd.statusCode, 200)
    assert.match(String(nd.headers['content-type']), /^application\/x-ndjson/)
    assert.ok(nd.body.endsWith('\n'))
    const rows = nd.body.trimEnd().split('\n').map((l) => JSON.parse(l))
    assert.equal(rows.length, leases.length)
    assert.deepEqual(rows.map((r) => r.lease_id).sort((a, b) => a - b), leases.map((l) => l.lease_id).sort((a, b) => a - b), 'every usage of the pool once')
    assert.ok(rows.every((r) => r.pool === 'audit'), 'only this pool')
    for (let i = 1; i < rows.length; i++) {
      const [a, b] = [rows[i - 1], rows[i]]
      assert.ok(Date.parse(a.started_at) < Date.parse(b.started_at) || (a.started_at === b.started_at && a.lease_id < b.lease_id), 'oldest first')
    }
    for (const r of rows) {
      assert.deepEqual(Object.keys(r), ['pool', 'token_id', 'lease_id', 'user_id', 'started_at', 'expires_at', 'released_at', 'release_reason'])
    }
    const byToken = new Map<string, any[]>()
    for (const r of rows) byToken.set(r.token_id, [...(byToken.get(r.token_id) ?? []), r])
    for (const usages of byToken.values()) {
      for (let i = 1; i < usages.length; i++) {
        const end = usages[i - 1].released_at ?? usages[i - 1].expires_at
        assert.ok(Date.parse(end) <= Date.parse(usages[i].started_at), 'no overlap')
      }
    }
    // Each row is what the token's history says of that usage.
    for (const [tokenId, usages] of byToken) {
      const history = (await c.send('GET', `/api/tokens/${tokenId}/history?limit=500`)).json().data.usages
      assert.deepEqual([...history].reverse(), usages.map(({ pool: _p, token_id: _t, ...u }) => u))
    }
    assert.deepEqual(rows.map((r) => r.release_reason), [...rows.slice(0, -1).map((r) => r.release_reason), null])
    assert.ok(rows.some((r) => r.release_reason === 'evicted') && rows.some((r) => r.release_reason === 'released') && rows.some((r) => r.release_reason === 'expired'))

    const csv = await c.send('GET', '/api/pools/audit/export?format=csv')
    assert.equal(csv.statusCode, 200)
    assert.match(String(csv.headers['content-type']), /^text\/csv/)
    const [header, ...lines] = csv.body.trimEnd().split('\n')
    assert.equal(header, 'pool,token_id,lease_id,user_id,started_at,expires_at,released_at,release_reason')
    const columns = header!.split(',')
    const parsed = lines.map((line) => Object.fromEntries(line.split(',').map((cell, i) => {
      const key = columns[i]!
      if (cell === '') return [key, null]
      return [key, key === 'lease_id' ? Number(cell) : cell]
    })))
    assert.deepEqual(parsed, rows, 'the CSV reads back as the NDJSON')

    // since / until keep usages by started_at, [since, until).
    const mid = rows[3].started_at
    const since = (await c.send('GET', `/api/pools/audit/export?since=${mid}`)).body.trimEnd().split('\n').map((l) => JSON.parse(l))
    const until = (await c.send('GET', `/api/pools/audit/export?until=${mid}`)).body.trimEnd().split('\n').map((l) => JSON.parse(l))
    assert.ok(since.every((r) => r.started_at >= mid))
    assert.ok(until.every((r) => r.started_at < mid))
    assert.deepEqual([...until, ...since], rows)
    assertError(await c.send('GET', '/api/pools/audit/export?since=yesterday'), 422, 'validation_failed', 'since')
    assertError(await c.send('GET', '/api/pools/audit/export?format=xml'), 422, 'validation_failed', 'format')
    // The default pool's short route is its own export.
    assert.equal((await c.send('GET', '/api/export')).body, '')
  })

  test('with ADMIN_TOKEN set, admin routes without it (or with a wrong one) are 401 with WWW-Authenticate: Bearer and change nothing', async (t) => {
    const adminToken = 'pools-admin-secret'
    const { app, db } = await build(t, backend, { adminToken })
    const admin = client(app, adminToken)
    assert.equal((await admin.create('guarded', { size: 2 })).statusCode, 201)
    const lease = (await admin.allocate('guarded')).json().data
    const token = lease.token_id
    const snapshot = async () => JSON.stringify([
      await db.query('SELECT * FROM pools ORDER BY name'),
      await db.query('SELECT id, label, cooling_until, disabled, disabled_reason, lease_id, retired FROM tokens ORDER BY id'),
      await db.query('SELECT id, released_at FROM usages ORDER BY id'),
    ])
    const before = await snapshot()
    const routes: Array<[Parameters<typeof admin.send>[0], string, unknown?]> = [
      ['POST', '/api/pools', { name: 'sneaky' }],
      ['PATCH', '/api/pools/guarded', { size: 5 }],
      ['DELETE', '/api/pools/guarded?force=true'],
      ['POST', '/api/pools/guarded/tokens/clear'],
      ['POST', '/api/tokens/clear'],
      ['GET', '/api/pools/guarded/export'],
      ['GET', '/api/export'],
      ['POST', `/api/tokens/${token}/cooldown`, { seconds: 5 }],
      ['POST', `/api/pools/guarded/tokens/${token}/cooldown`, { seconds: 5 }],
      ['POST', `/api/tokens/${token}/disable`, { reason: 'x' }],
      ['POST', `/api/pools/guarded/tokens/${token}/disable`, {}],
      ['POST', `/api/tokens/${token}/enable`],
      ['PATCH', `/api/tokens/${token}`, { label: 'x' }],
      ['PATCH', `/api/pools/guarded/tokens/${token}`, { label: 'x' }],
      // The right is checked before the request: a bad one is still a 401, not a 422.
      ['POST', '/api/pools', { size: 0 }],
      ['PATCH', '/api/pools/guarded', { sise: 5 }],
      ['POST', `/api/tokens/${token}/disable`, { reason: 'x'.repeat(500) }],
    ]
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${adminToken}x`, adminToken, `Basic ${adminToken}`]) {
      for (const [method, url, body] of routes) {
        const res = await app.inject({
          method,
          url,
          headers: { ...(authorization === undefined ? {} : { authorization }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
        })
        assertError(res, 401, 'unauthorized')
        assert.equal(res.headers['www-authenticate'], 'Bearer', `${method} ${url}`)
      }
    }
    assert.equal(await snapshot(), before)
    // Open routes stay open, and the admin token opens the admin ones.
    assert.equal((await app.inject('/api/pools/guarded')).statusCode, 200)
    assert.equal((await admin.send('PATCH', `/api/tokens/${token}`, { label: 'ok' })).statusCode, 200)
    assert.equal((await admin.send('GET', '/api/pools/guarded/export')).statusCode, 200)
    assert.equal((await admin.remove('guarded', true)).statusCode, 200)
  })
})
