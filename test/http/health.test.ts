import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import type { App } from '../../src/http/app.js'
import type { Db } from '../../src/store/db.js'
import { build, overlaps, travel } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'
import { assertError } from '../helpers/errors.js'

type Res = Awaited<ReturnType<App['inject']>>

/** The calls of these tests; without ADMIN_TOKEN the admin routes answer loopback, as inject is. */
function client (app: App) {
  const send = async (method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown): Promise<Res> =>
    await app.inject({
      method,
      url,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) }),
    })
  return {
    send,
    allocate: async (user = randomUUID(), pool = 'default') => {
      const res = await send('POST', `/api/pools/${pool}/tokens/allocate`, { user_id: user })
      assert.equal(res.statusCode, 200, res.body)
      return res.json().data
    },
    cooldown: async (token: string, body: Record<string, unknown>) => await send('POST', `/api/tokens/${token}/cooldown`, body),
    disable: async (token: string, body?: Record<string, unknown>) => await send('POST', `/api/tokens/${token}/disable`, body),
    enable: async (token: string) => await send('POST', `/api/tokens/${token}/enable`),
    renew: async (token: string, user: string) => await send('POST', `/api/tokens/${token}/renew`, { user_id: user }),
    token: async (token: string) => (await send('GET', `/api/tokens/${token}`)).json().data,
    history: async (token: string) => (await send('GET', `/api/tokens/${token}/history?limit=500`)).json().data.usages,
    ids: async (): Promise<string[]> => (await send('GET', '/api/tokens')).json().data.map((t: { id: string }) => t.id),
  }
}

/** Everything a refused request could have changed. */
async function snapshot (db: Db): Promise<string> {
  return JSON.stringify([
    await db.query('SELECT id, label, cooling_until, disabled, disabled_reason, lease_id, lease_expires_at, usage_count FROM tokens ORDER BY id'),
    await db.query('SELECT id, expires_at, released_at, release_reason FROM usages ORDER BY id'),
  ])
}

const ms = (iso: string) => Date.parse(iso)

describeEachBackend('token health over HTTP', (backend) => {
  test('cooldown by the holder ends the lease (reason cooldown); the token is cooling until cooling_until and free exactly then', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 1 })
    const c = client(app)
    const lease = await c.allocate()
    const res = await c.cooldown(lease.token_id, { user_id: lease.user_id, seconds: 30.5 })
    assert.equal(res.statusCode, 200, res.body)
    const { token, ended_lease: ended, lease: next, lease_error: leaseError } = res.json().data
    assert.deepEqual({ ...ended, released_at: 'x' }, {
      pool: 'default', token_id: lease.token_id, lease_id: lease.lease_id, user_id: lease.user_id, started_at: lease.started_at, released_at: 'x', release_reason: 'cooldown',
    })
    assert.equal(next, null)
    assert.equal(leaseError, null)
    assert.equal(ms(token.cooling_until) - ms(ended.released_at), 30_500, 'fractional seconds are kept')
    assert.deepEqual(token, {
      id: lease.token_id,
      pool: 'default',
      label: null,
      status: 'cooling',
      current_user_id: null,
      usage_count: 1,
      cooling_until: token.cooling_until,
      disabled_reason: null,
      active_usage: null,
    })
    const [usage] = await c.history(lease.token_id)
    assert.equal(usage.release_reason, 'cooldown')
    assert.equal(usage.released_at, ended.released_at)
    // The holder no longer holds it.
    assertError(await c.send('POST', `/api/tokens/${lease.token_id}/release`, { user_id: lease.user_id }), 409, 'not_holder')
    const list = (await c.send('GET', '/api/tokens')).json()
    assert.equal(list.data[0].status, 'cooling')
    assert.equal(list.data[0].cooling_until, token.cooling_until)
    assert.deepEqual([list.meta.cooling, list.meta.available, list.meta.active], [1, 0, 0])

    // The only token is cooling: nobody gets it, Retry-After counts to its end.
    const refused = await c.send('POST', '/api/tokens/allocate', { user_id: randomUUID() })
    assertError(refused, 409, 'pool_exhausted')
    assert.ok([30, 31].includes(Number(refused.headers['retry-after'])), `Retry-After ${refused.headers['retry-after']}`)

    // Exactly at cooling_until the token is free, a millisecond before it is not (the database's rule).
    const [edge] = await db.query<{ before: string, at: string, free_before: boolean, free_at: boolean }>(
      `SELECT tp_status(t, t.cooling_until - interval '1 millisecond') AS before, tp_status(t, t.cooling_until) AS at,
              tp_is_free(t, t.cooling_until - interval '1 millisecond') AS free_before, tp_is_free(t, t.cooling_until) AS free_at
         FROM tokens t WHERE t.id = $1`, [lease.token_id])
    assert.deepEqual(edge, { before: 'cooling', at: 'available', free_before: false, free_at: true })

    // Over HTTP, with time moved: still cooling a second before, free once the moment has passed.
    await travel(db, 29.5)
    assert.equal((await c.token(lease.token_id)).status, 'cooling')
    assertError(await c.send('POST', '/api/tokens/allocate', { user_id: randomUUID() }), 409, 'pool_exhausted')
    await travel(db, 1)
    const after = await c.token(lease.token_id)
    assert.equal(after.status, 'available')
    assert.equal(after.cooling_until, null)
    const again = await c.allocate()
    assert.equal(again.token_id, lease.token_id)
    assert.deepEqual(await overlaps(db), [])
  })

  test('a cooldown ends on a whole millisecond, rounded up: never shorter than asked, never none', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 4 })
    const c = client(app)
    for (const [seconds, expected] of [[1.1, 1100], [1.2345, 1235], [0.0004, 1]] as const) {
      const lease = await c.allocate()
      assert.equal((await c.cooldown(lease.token_id, { user_id: lease.user_id, seconds })).statusCode, 200)
      // Read from the table: a 1 ms cooldown is over before the answer shows the token.
      const [stored] = await db.query<{ cooled: number, exact: boolean }>(
        `SELECT round(extract(epoch FROM t.cooling_until - u.released_at) * 1000)::int AS cooled,
                t.cooling_until = date_trunc('milliseconds', t.cooling_until) AS exact
           FROM tokens t JOIN usages u ON u.id = $2 WHERE t.id = $1`, [lease.token_id, lease.lease_id])
      assert.deepEqual(stored, { cooled: expected, exact: true }, String(seconds))
    }
  })

  test('a second, shorter cooldown never shortens; a longer one extends; an admin may cool any token without user_id', async (t) => {
    const { app } = await build(t, backend, { poolSize: 3 })
    const c = client(app)
    const [free] = await c.ids()
    const first = (await c.cooldown(free!, { seconds: 60 })).json().data
    assert.equal(first.ended_lease, null)
    assert.equal(first.token.status, 'cooling')
    const shorter = await c.cooldown(free!, { seconds: 10 })
    assert.equal(shorter.statusCode, 200)
    assert.equal(shorter.json().data.token.cooling_until, first.token.cooling_until, 'the later deadline stands')
    const longer = (await c.cooldown(free!, { seconds: 120 })).json().data
    assert.ok(ms(longer.token.cooling_until) > ms(first.token.cooling_until) + 55_000)

    // An admin cooldown of a leased token ends that lease, reason cooldown.
    const lease = await c.allocate()
    assert.notEqual(lease.token_id, free)
    const admin = (await c.cooldown(lease.token_id, { seconds: 5 })).json().data
    assert.equal(admin.ended_lease.lease_id, lease.lease_id)
    assert.equal(admin.ended_lease.user_id, lease.user_id)
    assert.equal(admin.ended_lease.release_reason, 'cooldown')
    assert.equal(admin.lease, null)
    assert.equal((await c.history(lease.token_id))[0].release_reason, 'cooldown')
    // The holder then cools it again: it no longer holds it.
    assertError(await c.cooldown(lease.token_id, { user_id: lease.user_id, seconds: 5 }), 409, 'not_holder')
    assert.equal((await c.send('GET', '/api/tokens')).json().meta.cooling, 2)
  })

  test('cooldown by someone who does not hold the token is 409 not_holder; bad seconds are 422; both change nothing', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 2, cooldownMaxSeconds: 60 })
    const c = client(app)
    const lease = await c.allocate()
    const before = await snapshot(db)
    assertError(await c.cooldown(lease.token_id, { user_id: randomUUID(), seconds: 5 }), 409, 'not_holder')
    const other = (await c.ids()).find((id) => id !== lease.token_id)!
    assertError(await c.cooldown(other, { user_id: lease.user_id, seconds: 5 }), 409, 'not_holder')
    for (const seconds of [0, -1, -0.5, 60.001, 61, 604_801, '5x', null, [5], { s: 5 }]) {
      assertError(await c.cooldown(lease.token_id, { user_id: lease.user_id, seconds }), 422, 'validation_failed', 'seconds')
      assertError(await c.cooldown(other, { seconds }), 422, 'validation_failed', 'seconds')
    }
    assertError(await c.cooldown(lease.token_id, { user_id: lease.user_id }), 422, 'validation_failed', 'seconds')
    assertError(await c.cooldown(lease.token_id, { user_id: 'nope', seconds: 5 }), 422, 'validation_failed', 'user_id')
    // reallocate is for the holder: an admin call with it names the missing user_id.
    assertError(await c.cooldown(other, { seconds: 5, reallocate: true }), 422, 'validation_failed', 'user_id')
    assertError(await c.cooldown(randomUUID(), { seconds: 5 }), 404, 'not_found')
    assert.equal(await snapshot(db), before)
    // The pool's maximum itself is allowed.
    const max = (await c.cooldown(lease.token_id, { user_id: lease.user_id, seconds: 60 })).json().data
    assert.equal(ms(max.token.cooling_until) - ms(max.ended_lease.released_at), 60_000)
    // After a lease ran out, its holder holds nothing.
    const late = await c.allocate()
    await travel(db, 121)
    assertError(await c.cooldown(late.token_id, { user_id: late.user_id, seconds: 5 }), 409, 'not_holder')
  })

  test('reallocate gives the holder a lease on another token; with none to give, 200 with lease null and lease_error while the cooldown stands', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 2 })
    const c = client(app)
    const user = randomUUID()
    const lease = await c.allocate(user)
    const moved = await c.cooldown(lease.token_id, { user_id: user, seconds: 30, reallocate: true })
    assert.equal(moved.statusCode, 200, moved.body)
    const data = moved.json().data
    assert.equal(data.lease_error, null)
    assert.equal(data.lease.user_id, user)
    assert.equal(data.lease.pool, 'default')
    assert.notEqual(data.lease.token_id, lease.token_id)
    assert.ok(data.lease.lease_id > lease.lease_id)
    assert.equal(data.ended_lease.release_reason, 'cooldown')
    assert.equal(data.token.status, 'cooling')
    // Allocate now returns that new lease.
    assert.equal((await c.allocate(user)).lease_id, data.lease.lease_id)

    // The other token cools too: no token for the holder, but the cooldown stands.
    const stuck = await c.cooldown(data.lease.token_id, { user_id: user, seconds: 20, reallocate: true })
    assert.equal(stuck.statusCode, 200, stuck.body)
    const s = stuck.json().data
    assert.equal(s.lease, null)
    assert.equal(s.lease_error.code, 'pool_exhausted')
    assert.equal(typeof s.lease_error.message, 'string')
    assert.equal(s.token.status, 'cooling')
    assert.equal(s.ended_lease.lease_id, data.lease.lease_id)
    assert.equal((await c.token(data.lease.token_id)).status, 'cooling')
    assert.equal((await c.send('GET', '/api/tokens')).json().meta.cooling, 2)
    // A retry of the same call: the holder holds nothing now.
    assertError(await c.cooldown(data.lease.token_id, { user_id: user, seconds: 20, reallocate: true }), 409, 'not_holder')
    assert.deepEqual(await overlaps(db), [])
  })

  test('disable ends the lease (reason disabled); disabled tokens are never picked nor evicted; enable brings them back; both idempotent', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 2 })
    const c = client(app)
    const lease = await c.allocate()
    const before = await snapshot(db)
    assertError(await c.disable(lease.token_id, { reason: 'x'.repeat(201) }), 422, 'validation_failed', 'reason')
    assert.equal(await snapshot(db), before)

    const res = await c.disable(lease.token_id, { reason: 'r'.repeat(200) })
    assert.equal(res.statusCode, 200, res.body)
    const { token, ended_lease: ended } = res.json().data
    assert.deepEqual(token, {
      id: lease.token_id,
      pool: 'default',
      label: null,
      status: 'disabled',
      current_user_id: null,
      usage_count: 1,
      cooling_until: null,
      disabled_reason: 'r'.repeat(200),
      active_usage: null,
    })
    assert.equal(ended.lease_id, lease.lease_id)
    assert.equal(ended.release_reason, 'disabled')
    assert.equal((await c.history(lease.token_id))[0].release_reason, 'disabled')
    assertError(await c.send('POST', `/api/tokens/${lease.token_id}/release`, { user_id: lease.user_id }), 409, 'not_holder')

    // Again: harmless, nothing to end; a new reason replaces the old one, none keeps it.
    const again = (await c.disable(lease.token_id, { reason: 'revoked upstream' })).json().data
    assert.equal(again.ended_lease, null)
    assert.equal(again.token.disabled_reason, 'revoked upstream')
    const events = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pool_events WHERE type = 'disabled'"))[0]!.n
    const disabledEvents = await events()
    assert.equal((await c.disable(lease.token_id)).json().data.token.disabled_reason, 'revoked upstream')
    assert.equal((await c.disable(lease.token_id, { reason: null })).json().data.token.disabled_reason, 'revoked upstream')
    assert.equal(await events(), disabledEvents, 'nothing changed, nothing to tell')

    // An admin cooldown of a disabled token is refused.
    assertError(await c.cooldown(lease.token_id, { seconds: 5 }), 409, 'token_disabled')

    // Never picked, never evicted: every new lease goes to the other token, evicting as it must.
    const other = (await c.ids()).find((id) => id !== lease.token_id)!
    const users = []
    for (let i = 0; i < 4; i++) {
      const l = await c.allocate()
      users.push(l)
      assert.equal(l.token_id, other)
      if (i > 0) assert.equal(l.evicted_user_id, users[i - 1].user_id)
    }
    assert.equal((await c.token(lease.token_id)).status, 'disabled')
    assert.deepEqual((await c.history(lease.token_id)).length, 1)
    const meta = (await c.send('GET', '/api/tokens')).json().meta
    assert.deepEqual([meta.disabled, meta.active, meta.available], [1, 1, 0])

    // Enable: available at once; again harmless; on an active token harmless too.
    const enabled = await c.enable(lease.token_id)
    assert.equal(enabled.statusCode, 200)
    assert.equal(enabled.json().data.token.status, 'available')
    assert.equal(enabled.json().data.token.disabled_reason, null)
    assert.equal((await c.enable(lease.token_id)).json().data.token.status, 'available')
    assert.equal((await c.enable(other)).json().data.token.status, 'active')
    assert.equal((await c.allocate()).token_id, lease.token_id)
    // Enable also ends a cooldown.
    await c.cooldown(other, { seconds: 500 })
    assert.equal((await c.enable(other)).json().data.token.status, 'available')
    assertError(await c.enable(randomUUID()), 404, 'not_found')
    assertError(await c.disable(randomUUID()), 404, 'not_found')
    assert.deepEqual(await overlaps(db), [])
  })

  for (const onExhausted of ['evict_oldest', 'reject'] as const) {
    test(`every token cooling: 409 pool_exhausted with Retry-After to the first end (${onExhausted}); every token disabled: 409 without Retry-After`, async (t) => {
      const { app, db } = await build(t, backend, { poolSize: 2, onExhausted })
      const c = client(app)
      const [a, b] = await c.ids()
      const aEnds = ms((await c.cooldown(a!, { seconds: 40 })).json().data.token.cooling_until)
      const bEnds = ms((await c.cooldown(b!, { seconds: 9.2 })).json().data.token.cooling_until)
      /** The answer to a refusal sent now: Retry-After, and what it may be for a deadline. */
      const refusal = async () => {
        const sent = Date.now()
        const res = await c.send('POST', '/api/tokens/allocate', { user_id: randomUUID() })
        assertError(res, 409, 'pool_exhausted')
        const retry = Number(res.headers['retry-after'])
        // Whole seconds, rounded up, from some moment while the request was in flight.
        const fits = (end: number) => retry >= Math.ceil((end - Date.now()) / 1000) && retry <= Math.ceil((end - sent) / 1000)
        return { retry, fits }
      }
      const cooling = await refusal()
      assert.ok(cooling.fits(bEnds), `Retry-After ${cooling.retry}: rounded up, to the earliest cooldown end`)

      await c.disable(b!)
      const mixed = await refusal()
      assert.ok(mixed.fits(aEnds), `Retry-After ${mixed.retry}: to the cooldown that is left`)

      await c.disable(a!)
      const disabled = await c.send('POST', '/api/tokens/allocate', { user_id: randomUUID() })
      assertError(disabled, 409, 'pool_exhausted')
      assert.equal(disabled.headers['retry-after'], undefined)

      // Nothing was granted by any of it.
      const [row] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM usages')
      assert.equal(row?.n, 0)
      await c.enable(a!)
      assert.equal((await c.allocate()).token_id, a)
    })
  }

  test('label: set, shown, cleared with null; over 100 characters is 422', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 2 })
    const c = client(app)
    const [id] = await c.ids()
    const set = await c.send('PATCH', `/api/tokens/${id}`, { label: 'key #7 (billing team)' })
    assert.equal(set.statusCode, 200, set.body)
    assert.equal(set.json().data.label, 'key #7 (billing team)')
    assert.equal(set.json().data.id, id)
    assert.equal((await c.token(id!)).label, 'key #7 (billing team)')
    assert.equal((await c.send('GET', '/api/tokens')).json().data[0].label, 'key #7 (billing team)')
    assert.equal((await c.send('PATCH', `/api/pools/default/tokens/${id}`, { label: 'l'.repeat(100) })).json().data.label, 'l'.repeat(100))

    const before = await snapshot(db)
    assertError(await c.send('PATCH', `/api/tokens/${id}`, { label: 'l'.repeat(101) }), 422, 'validation_failed', 'label')
    assertError(await c.send('PATCH', `/api/tokens/${id}`, {}), 422, 'validation_failed', 'label')
    assertError(await c.send('PATCH', `/api/tokens/${randomUUID()}`, { label: 'x' }), 404, 'not_found')
    assert.equal(await snapshot(db), before)

    const cleared = await c.send('PATCH', `/api/tokens/${id}`, { label: null })
    assert.equal(cleared.statusCode, 200)
    assert.equal(cleared.json().data.label, null)
    assert.equal((await c.token(id!)).label, null)
    const [row] = await db.query<{ label: string | null }>('SELECT label FROM tokens WHERE id = $1', [id])
    assert.equal(row?.label, null, 'stored as null, not as an empty string')
  })

  test('renew keeps lease_id, started_at and token; moves expires_at to min(now + TTL, renewable_until); 409 renewal_limit at the cap', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 2, leaseTtlSeconds: 30, leaseMaxSeconds: 100 })
    const c = client(app)
    const lease = await c.allocate()
    // The clock moves by travel, and by the real time the test takes (more on a loaded machine).
    const granted = Date.now()
    const real = () => Date.now() - granted + 50
    assert.equal(ms(lease.renewable_until) - ms(lease.started_at), 100_000)
    assert.equal(ms(lease.expires_at) - ms(lease.started_at), 30_000)

    await travel(db, 10)
    const res = await c.renew(lease.token_id, lease.user_id)
    assert.equal(res.statusCode, 200, res.body)
    const renewed = res.json().data
    for (const k of ['pool', 'token_id', 'user_id', 'lease_id', 'evicted_user_id'] as const) assert.equal(renewed[k], lease[k], k)
    // started_at moved back 10 s with the clock; the lease is the same one.
    assert.equal(ms(renewed.started_at), ms(lease.started_at) - 10_000)
    const fromStart = ms(renewed.expires_at) - ms(renewed.started_at)
    assert.ok(fromStart >= 40_000 && fromStart < 40_000 + real(), `expires ${fromStart} ms after the start: now + 30 s`)
    // The whole seconds left as of the renewal, as allocate counts from the grant.
    assert.equal(renewed.expires_in_seconds, 30)
    assert.equal(renewed.renewable_until, new Date(ms(renewed.started_at) + 100_000).toISOString())
    // Its event carries the renewal's time, so it says the same (it counted from the lease's start: 40).
    const [event] = await db.query<{ left: number }>(
      "SELECT floor(extract(epoch FROM expires_at - renewed_at))::int AS left FROM pool_events WHERE type = 'renewed' AND lease_id = $1 ORDER BY id DESC LIMIT 1",
      [lease.lease_id])
    assert.equal(event?.left, 30)

    // Renewed as a heartbeat, each renewal from now; near the cap it stops exactly at renewable_until.
    await travel(db, 25)
    const second = (await c.renew(lease.token_id, lease.user_id)).json().data
    assert.ok(ms(second.expires_at) - ms(second.started_at) >= 65_000 && ms(second.expires_at) - ms(second.started_at) < 65_000 + real())
    await travel(db, 25)
    const third = (await c.renew(lease.token_id, lease.user_id)).json().data
    assert.ok(ms(third.expires_at) - ms(third.started_at) >= 90_000 && ms(third.expires_at) - ms(third.started_at) < 90_000 + real())
    await travel(db, 25)
    const capped = (await c.renew(lease.token_id, lease.user_id)).json().data
    assert.equal(capped.expires_at, capped.renewable_until)
    assert.equal(capped.lease_id, lease.lease_id)
    const limit = await c.renew(lease.token_id, lease.user_id)
    assertError(limit, 409, 'renewal_limit')
    assert.deepEqual(limit.json().error.details, { renewable_until: capped.renewable_until })

    // Not the holder: 409 not_holder, for a stranger and for the holder once the lease ran out.
    assertError(await c.renew(lease.token_id, randomUUID()), 409, 'not_holder')
    const other = (await c.ids()).find((id) => id !== lease.token_id)!
    assertError(await c.renew(other, lease.user_id), 409, 'not_holder')
    assertError(await c.renew(randomUUID(), lease.user_id), 404, 'not_found')

    // Renewals are not new leases: one usage, counted once, with the renewed end.
    const history = await c.history(lease.token_id)
    assert.equal(history.length, 1)
    assert.equal(history[0].expires_at, capped.expires_at)
    assert.equal((await c.token(lease.token_id)).usage_count, 1)
    assert.equal((await c.send('GET', '/api/stats')).json().data.allocations_in_window, 1)
    await travel(db, 16)
    assertError(await c.renew(lease.token_id, lease.user_id), 409, 'not_holder')
    assert.equal((await c.history(lease.token_id))[0].release_reason, 'expired')
  })

  test('with the default lease_max_seconds (= TTL) the first renewal is already at the limit', async (t) => {
    const { app } = await build(t, backend, { poolSize: 1 })
    const c = client(app)
    const lease = await c.allocate()
    assert.equal(lease.renewable_until, lease.expires_at)
    const res = await c.renew(lease.token_id, lease.user_id)
    assertError(res, 409, 'renewal_limit')
    assert.deepEqual(res.json().error.details, { renewable_until: lease.renewable_until })
  })

  test('quota: the third new lease in a window is 429 quota_exceeded with Retry-After; repeats and renewals do not count; a new window resets it', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 2, userQuota: 2, leaseMaxSeconds: 600 })
    const c = client(app)
    const user = randomUUID()
    const first = await c.allocate(user)
    assert.equal((await c.allocate(user)).lease_id, first.lease_id, 'a repeat is the same lease')
    assert.equal((await c.renew(first.token_id, user)).statusCode, 200)
    assert.equal((await c.renew(first.token_id, user)).statusCode, 200)
    await c.send('POST', `/api/tokens/${first.token_id}/release`, { user_id: user })
    const second = await c.allocate(user)
    assert.notEqual(second.lease_id, first.lease_id)
    assert.equal((await c.allocate(user)).lease_id, second.lease_id)
    await c.send('POST', `/api/tokens/${second.token_id}/release`, { user_id: user })

    const before = await snapshot(db)
    const refused = await c.send('POST', '/api/tokens/allocate', { user_id: user })
    assertError(refused, 429, 'quota_exceeded')
    const stats = (await c.send('GET', '/api/stats')).json().data
    const retry = Number(refused.headers['retry-after'])
    const untilReset = (ms(stats.window_resets_at) - Date.now()) / 1000
    assert.ok(Math.abs(retry - untilReset) <= 5, `Retry-After ${retry} is the time until the window resets (${untilReset})`)
    assert.equal(await snapshot(db), before)
    // Others are not limited by this user's quota; the quota is checked before the pool is full.
    const a = await c.allocate()
    await c.allocate()
    assert.equal(a.evicted_user_id, null)
    assertError(await c.send('POST', '/api/tokens/allocate', { user_id: user }), 429, 'quota_exceeded')

    // Past the window's end the user may allocate again.
    await travel(db, 24 * 3600 + 1)
    const third = await c.allocate(user)
    assert.ok(third.lease_id > second.lease_id)
  })

  test('quota 0 refuses every new lease', async (t) => {
    const { app } = await build(t, backend, { poolSize: 2, userQuota: 0 })
    const c = client(app)
    const res = await c.send('POST', '/api/tokens/allocate', { user_id: randomUUID() })
    assertError(res, 429, 'quota_exceeded')
    assert.ok(Number(res.headers['retry-after']) >= 1)
  })
})
