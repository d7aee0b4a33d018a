import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { build, json, overlaps, travel } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'
import { assertError } from '../helpers/errors.js'

const allocate = async (app: Awaited<ReturnType<typeof build>>['app'], user = randomUUID()) =>
  (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })).json().data

describeEachBackend('lease lifecycle', (backend) => {
  test('release: the holder gives the token back; it is free at once and in the history', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 3 })
    const lease = await allocate(app)
    const res = await app.inject({ method: 'POST', url: `/api/tokens/${lease.token_id}/release`, ...json({ user_id: lease.user_id }) })
    assert.equal(res.statusCode, 200)
    const data = res.json().data
    assert.deepEqual({ ...data, released_at: 'x' }, {
      pool: 'default',
      token_id: lease.token_id,
      lease_id: lease.lease_id,
      user_id: lease.user_id,
      started_at: lease.started_at,
      released_at: 'x',
      release_reason: 'released',
    })
    assert.ok(Date.parse(data.released_at) >= Date.parse(lease.started_at))
    const token = (await app.inject(`/api/tokens/${lease.token_id}`)).json().data
    assert.deepEqual(token, {
      id: lease.token_id,
      pool: 'default',
      label: null,
      status: 'available',
      current_user_id: null,
      usage_count: 1,
      cooling_until: null,
      disabled_reason: null,
      active_usage: null,
    })
    const again = await app.inject({ method: 'POST', url: `/api/tokens/${lease.token_id}/release`, ...json({ user_id: lease.user_id }) })
    assert.equal(again.statusCode, 409)
    assert.equal(again.json().error.code, 'not_holder')
    const usage = (await app.inject(`/api/tokens/${lease.token_id}/history`)).json().data.usages[0]
    assert.deepEqual(usage, {
      lease_id: lease.lease_id,
      user_id: lease.user_id,
      started_at: lease.started_at,
      expires_at: lease.expires_at,
      released_at: data.released_at,
      release_reason: 'released',
    })
    assert.deepEqual(await overlaps(db), [])
  })

  test('release after the lease ran out is 409 not_holder', async (t) => {
    const { app, db } = await build(t, backend)
    const lease = await allocate(app)
    await travel(db, 120)
    const res = await app.inject({ method: 'POST', url: `/api/tokens/${lease.token_id}/release`, ...json({ user_id: lease.user_id }) })
    assert.equal(res.statusCode, 409)
    assert.equal(res.json().error.code, 'not_holder')
  })

  test('clear ends every active lease with reason cleared', async (t) => {
    const { app } = await build(t, backend, { poolSize: 4 })
    const leases = [await allocate(app), await allocate(app), await allocate(app)]
    const res = await app.inject({ method: 'POST', url: '/api/tokens/clear' })
    assert.deepEqual(res.json(), { data: { cleared_tokens: 3 } })
    const list = (await app.inject('/api/tokens')).json()
    assert.equal(list.meta.active, 0)
    for (const l of leases) {
      const usage = (await app.inject(`/api/tokens/${l.token_id}/history`)).json().data.usages[0]
      assert.equal(usage.release_reason, 'cleared')
    }
    assert.deepEqual((await app.inject({ method: 'POST', url: '/api/tokens/clear' })).json(), { data: { cleared_tokens: 0 } })
  })

  test('list: creation order, status filter, meta counts the whole pool', async (t) => {
    const { app } = await build(t, backend, { poolSize: 5 })
    const all = (await app.inject('/api/tokens')).json()
    assert.equal(all.data.length, 5)
    const lease = await allocate(app)
    const after = (await app.inject('/api/tokens')).json()
    assert.deepEqual(after.data.map((x: { id: string }) => x.id), all.data.map((x: { id: string }) => x.id))
    const active = (await app.inject('/api/tokens?status=active')).json()
    assert.deepEqual(active.data.map((x: { id: string }) => x.id), [lease.token_id])
    assert.deepEqual(active.data[0], {
      id: lease.token_id,
      pool: 'default',
      label: null,
      status: 'active',
      current_user_id: lease.user_id,
      lease_id: lease.lease_id,
      started_at: lease.started_at,
      expires_at: lease.expires_at,
      cooling_until: null,
      disabled_reason: null,
      usage_count: 1,
    })
    const available = (await app.inject('/api/tokens?status=available')).json()
    assert.equal(available.data.length, 4)
    assert.ok(available.data.every((x: { status: string, current_user_id: unknown, lease_id: unknown, started_at: unknown, expires_at: unknown }) =>
      x.status === 'available' && x.current_user_id === null && x.lease_id === null && x.started_at === null && x.expires_at === null))
    for (const body of [active, available, after]) {
      assert.equal(body.meta.total, 5)
      assert.equal(body.meta.active, 1)
      assert.equal(body.meta.available, 4)
      assert.equal(body.meta.cooling, 0)
      assert.equal(body.meta.disabled, 0)
      assert.equal(body.meta.waiting, 0)
      assert.equal(body.meta.next_cursor, null)
      assert.equal(Date.parse(body.meta.window_resets_at) - Date.parse(body.meta.window_started_at), 24 * 3600_000)
    }
  })

  test('history pages newest first, never skipping or repeating', async (t) => {
    const { app } = await build(t, backend, { poolSize: 1 })
    const leaseIds: number[] = []
    for (let i = 0; i < 7; i++) leaseIds.push((await allocate(app)).lease_id)
    const tokenId = (await app.inject('/api/tokens')).json().data[0].id
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const res: { statusCode: number, json: () => any } = await app.inject(`/api/tokens/${tokenId}/history?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`)
      assert.equal(res.statusCode, 200)
      const body = res.json()
      assert.equal(body.data.token_id, tokenId)
      seen.push(...body.data.usages.map((u: { started_at: string, user_id: string }) => u.user_id))
      cursor = body.meta.next_cursor
      pages++
    } while (cursor !== null)
    assert.equal(pages, 3)
    assert.equal(seen.length, 7)
    assert.equal(new Set(seen).size, 7)
    const full = (await app.inject(`/api/tokens/${tokenId}/history?limit=500`)).json()
    assert.deepEqual(full.data.usages.map((u: { user_id: string }) => u.user_id), seen)
    assert.equal(full.meta.next_cursor, null)
    // The cursor belongs to this token's history: on another token's it would skip usages.
    assert.equal((await app.inject({ method: 'POST', url: '/api/pools', payload: { name: 'other', size: 1 } })).statusCode, 201)
    const other = (await app.inject('/api/pools/other/tokens')).json().data[0].id
    const mine = (await app.inject(`/api/tokens/${tokenId}/history?limit=1`)).json().meta.next_cursor
    assertError(await app.inject(`/api/tokens/${other}/history?limit=1&cursor=${mine}`), 422, 'validation_failed', 'cursor')
    const [first, ...rest] = full.data.usages
    assert.equal(first.released_at, null)
    assert.equal(first.release_reason, null)
    assert.ok(rest.every((u: { release_reason: string }) => u.release_reason === 'evicted'))
    // Each usage starts at or after the previous one ended.
    for (let i = 0; i + 1 < full.data.usages.length; i++) {
      assert.ok(Date.parse(full.data.usages[i].started_at) >= Date.parse(full.data.usages[i + 1].released_at))
    }
  })

  test('stats: counts, min/max/mean and every least-used token', async (t) => {
    const { app } = await build(t, backend, { poolSize: 4 })
    const a = await allocate(app)
    await app.inject({ method: 'POST', url: `/api/tokens/${a.token_id}/release`, ...json({ user_id: a.user_id }) })
    const b = await allocate(app)
    const stats = (await app.inject('/api/stats')).json().data
    assert.equal(stats.total, 4)
    assert.equal(stats.active, 1)
    assert.equal(stats.available, 3)
    assert.equal(stats.allocations_in_window, 2)
    assert.deepEqual(stats.usage_count, { min: 0, max: 1, mean: 0.5 })
    assert.equal(stats.least_used.length, 2)
    assert.ok(stats.least_used.every((x: { token_id: string, usage_count: number }) =>
      x.usage_count === 0 && x.token_id !== a.token_id && x.token_id !== b.token_id))
  })

  test('usage counts go back to 0 when the window ends, and the stored start moves by whole windows', async (t) => {
    const { app, db, pool } = await build(t, backend, { poolSize: 2 })
    await allocate(app)
    const before = (await app.inject('/api/stats')).json().data
    await travel(db, 2.5 * 24 * 3600)
    const after = (await app.inject('/api/stats')).json().data
    assert.equal(after.allocations_in_window, 0)
    assert.equal(after.usage_count.max, 0)
    assert.equal(Date.parse(after.window_started_at) - (Date.parse(before.window_started_at) - 2.5 * 24 * 3600_000), 2 * 24 * 3600_000)
    // The sweep settles the window once; reads stay the same after it.
    await pool.sweep()
    assert.deepEqual((await app.inject('/api/stats')).json().data, after)
    await allocate(app)
    const next = (await app.inject('/api/stats')).json().data
    assert.equal(next.allocations_in_window, 1)
    assert.equal(next.window_started_at, after.window_started_at)
  })

  test('the sweep writes released_at = expires_at for leases that ran out', async (t) => {
    const { app, db, pool } = await build(t, backend, { poolSize: 2 })
    const lease = await allocate(app)
    await travel(db, 500)
    assert.equal(await pool.sweep(), 1)
    const [row] = await db.query<{ released_at: Date, expires_at: Date, release_reason: string }>('SELECT * FROM usages')
    assert.equal(row?.release_reason, 'expired')
    assert.equal(row?.released_at.getTime(), row?.expires_at.getTime())
    assert.equal(await pool.sweep(), 0)
    const usage = (await app.inject(`/api/tokens/${lease.token_id}/history`)).json().data.usages[0]
    assert.equal(Date.parse(usage.released_at) - Date.parse(usage.started_at), 120_000)
  })
})
