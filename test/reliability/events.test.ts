import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import Fastify from 'fastify'
import pg from 'pg'
import { newId } from '../../src/domain/ids.js'
import errors from '../../src/http/plugins/errors.js'
import eventRoutes from '../../src/http/routes/events.js'
import { ErrorBody } from '../../src/http/schemas/common.js'
import { buildApp } from '../../src/http/app.js'
import { TokenPool } from '../../src/pool/pool.js'
import { head, prune, readAfter } from '../../src/store/events.js'
import { pgliteDb } from '../../src/store/pglite-db.js'
import { build, json, travel, type Harness } from '../helpers/app.js'
import { describeEachBackend, describeMultiConnection, freshPglite, POSTGRES_URL, type Backend } from '../helpers/db.js'
import { SseClient } from './helpers/sse.js'
import { until } from '../helpers/until.js'
import { Access } from '../../src/http/plugins/auth.js'

/** A harness whose app listens on a real socket, and a way to open its event stream. */
async function serve (t: TestContext, backend: Backend, opts: Parameters<typeof build>[2] = {}) {
  const h: Harness = await build(t, backend, opts)
  const address = await h.app.listen({ port: 0, host: '127.0.0.1' })
  const clients: SseClient[] = []
  t.after(() => { for (const c of clients) c.close() })
  const events = async (headers: Record<string, string> = {}) => {
    const c = await SseClient.open(`${address}/api/events`, headers)
    clients.push(c)
    return c
  }
  const allocate = async (user = randomUUID()) => {
    const res = await h.app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })
    assert.equal(res.statusCode, 200, res.body)
    return res.json().data
  }
  return { ...h, address, events, allocate }
}

const data = (e: { data: string }) => JSON.parse(e.data)

describeEachBackend('GET /api/events', (backend) => {
  test('streams allocated, released and cleared with the answers\' own data', async (t) => {
    const s = await serve(t, backend, { poolSize: 5 })
    const stream = await s.events()
    const lease = await s.allocate()
    const released = (await s.app.inject({ method: 'POST', url: `/api/tokens/${lease.token_id}/release`, ...json({ user_id: lease.user_id }) })).json().data
    const [a, b] = [await s.allocate(), await s.allocate()]
    assert.equal((await s.app.inject({ method: 'POST', url: '/api/tokens/clear' })).json().data.cleared_tokens, 2)

    const got = await stream.waitForCount(6)
    assert.deepEqual(got.map((e) => e.event), ['allocated', 'released', 'allocated', 'allocated', 'cleared', 'cleared'])
    assert.deepEqual(data(got[0]!), lease)
    assert.deepEqual(data(got[1]!), released)
    assert.deepEqual([data(got[2]!), data(got[3]!)], [a, b])
    const cleared = got.slice(4).map(data).sort((x, y) => x.user_id.localeCompare(y.user_id))
    for (const [c, l] of cleared.map((c, i) => [c, [a, b].sort((x, y) => x.user_id.localeCompare(y.user_id))[i]])) {
      assert.equal(c.token_id, l.token_id)
      assert.equal(c.started_at, l.started_at)
      assert.equal(c.release_reason, 'cleared')
    }
    const ids = got.map((e) => Number(e.id))
    assert.ok(ids.every((id) => Number.isInteger(id) && id > 0))
    assert.equal(new Set(ids).size, ids.length)
  })

  test('an eviction streams the evicted lease\'s end, then the new lease naming whom it evicted', async (t) => {
    const s = await serve(t, backend, { poolSize: 1 })
    const stream = await s.events()
    const first = await s.allocate()
    const second = await s.allocate()
    assert.equal(second.evicted_user_id, first.user_id)
    const got = await stream.waitForCount(3)
    assert.deepEqual(got.map((e) => e.event), ['allocated', 'released', 'allocated'])
    assert.deepEqual(data(got[1]!), {
      pool: 'default',
      token_id: first.token_id,
      lease_id: first.lease_id,
      user_id: first.user_id,
      started_at: first.started_at,
      released_at: second.started_at,
      release_reason: 'evicted',
    })
    assert.deepEqual(data(got[2]!), second)
  })

  test('a lease that runs out streams as released, reason expired, at its own expires_at', async (t) => {
    const s = await serve(t, backend)
    const stream = await s.events()
    const lease = await s.allocate()
    await travel(s.db, 121)
    assert.equal(await s.pool.sweep(), 1)
    const ended = data(await stream.waitFor((e) => e.event === 'released'))
    assert.equal(ended.release_reason, 'expired')
    assert.equal(ended.user_id, lease.user_id)
    assert.equal(Date.parse(ended.released_at) - Date.parse(ended.started_at), 120_000)
  })

  test('a client that reconnects with Last-Event-ID gets exactly what it missed', async (t) => {
    const s = await serve(t, backend, { poolSize: 10 })
    const first = await s.events()
    await s.allocate()
    const seen = await first.waitForCount(1)
    first.close()
    const missed = [await s.allocate(), await s.allocate(), await s.allocate()]

    // Id 0, before the first event of the stream: everything kept, in order.
    const fromStart = await s.events({ 'last-event-id': '0' })
    assert.deepEqual((await fromStart.waitForCount(4)).map(data), [data(seen[0]!), ...missed])

    const again = await s.events({ 'last-event-id': seen[0]!.id! })
    const replayed = await again.waitForCount(3)
    assert.deepEqual(replayed.map(data), missed)
    const later = await s.allocate()
    assert.deepEqual(data((await again.waitForCount(4))[3]!), later)
    assert.ok(Number(replayed[0]!.id) > Number(seen[0]!.id))

    // The same through the query string, for clients that can't set the header.
    const byQuery = await SseClient.open(`${s.address}/api/events?last_event_id=${seen[0]!.id!}`)
    t.after(() => { byQuery.close() })
    assert.deepEqual((await byQuery.waitForCount(4)).map(data), [...missed, later])
  })

  test('the kept window is bounded; a client that missed pruned events gets one reset, then only new events', async (t) => {
    const s = await serve(t, backend, { poolSize: 10 })
    const watcher = await s.events()
    const leases = []
    for (let i = 0; i < 5; i++) leases.push(await s.allocate())
    const ids = (await watcher.waitForCount(5)).map((e) => e.id!)
    // Pruned are only events beyond the newest `keep` that are also more than an hour old.
    assert.equal(await prune(s.db, 2), 0)
    await s.db.query('UPDATE pool_events SET created_at = created_at - interval \'2 hours\'')
    // (the events before the leases are the read models' marks of the pool's provisioning)
    const [before] = await s.db.query<{ n: number }>('SELECT count(*)::int AS n FROM pool_events WHERE id < $1', [ids[3]])
    assert.equal(await prune(s.db, 2), before!.n)
    // An id still kept replays what came after it.
    const kept = await s.events({ 'last-event-id': ids[3]! })
    assert.deepEqual((await kept.waitForCount(1)).map(data), [leases[4]])
    // The pruned id right before the oldest kept one missed nothing: it replays the rest, no reset.
    const edge = await s.events({ 'last-event-id': ids[2]! })
    assert.deepEqual((await edge.waitForCount(2)).map(data), [leases[3], leases[4]])
    // An id older than the kept window: one reset, never a silent skip, then what happens next.
    const late = await s.events({ 'last-event-id': ids[0]! })
    const next = await s.allocate()
    const got = await late.waitForCount(2)
    assert.deepEqual(got.map((e) => e.event), ['reset', 'allocated'])
    assert.deepEqual(data(got[0]!), { pool: null }, 'a stream of every pool')
    assert.deepEqual(data(got[1]!), next)
    // An id the stream never had (newer than any: another database's) is no silent skip
    // either: one reset, then what happens next.
    const stranger = await s.events({ 'last-event-id': '999999999' })
    const after = await s.allocate()
    const fromStranger = await stranger.waitForCount(2)
    assert.deepEqual(fromStranger.map((e) => e.event), ['reset', 'allocated'])
    assert.deepEqual(data(fromStranger[1]!), after)
  })

  test('a subscriber that starts after many events gets only what happens next, never a replay', async (t) => {
    const s = await serve(t, backend, { poolSize: 20 })
    for (let i = 0; i < 60; i++) await s.allocate()
    await s.app.inject({ method: 'POST', url: '/api/tokens/clear' })
    const stream = await s.events()
    const next = await s.allocate()
    const [first] = await stream.waitForCount(1)
    assert.equal(first!.event, 'allocated')
    assert.deepEqual(data(first!), next)
    const later = await s.allocate()
    assert.deepEqual((await stream.waitForCount(2)).map(data), [next, later])
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(stream.events.length, 2, 'nothing older came after')
  })

  test('a malformed Last-Event-ID is a 422 in the contract\'s shape', async (t) => {
    const { app } = await build(t, backend)
    const res = await app.inject({ url: '/api/events', headers: { 'last-event-id': 'abc' } })
    assert.equal(res.statusCode, 422)
    assert.equal(res.json().error.code, 'validation_failed')
  })

  test('app.close() ends open streams and returns', async (t) => {
    const s = await serve(t, backend)
    const stream = await s.events()
    await s.allocate()
    await stream.waitForCount(1)
    await s.app.close()
    await stream.waitForEnd()
  })

  test('heartbeats keep an idle stream alive', async (t) => {
    const { pool } = await build(t, backend)
    const app = Fastify()
    app.addSchema(ErrorBody)
    await app.register(errors)
    await app.register(eventRoutes, { pool, access: new Access(undefined), heartbeatMs: 20 })
    t.after(async () => { await app.close() })
    const address = await app.listen({ port: 0, host: '127.0.0.1' })
    const stream = await SseClient.open(`${address}/api/events`)
    t.after(() => { stream.close() })
    await stream.waitForComments(2)
    assert.equal(stream.events.length, 0)
  })
})

test('head ordering: a subscriber that starts after events whose xids cross 999 → 1000 gets no replay (PGlite, xids burned)', async (t) => {
  // Its own PGlite, so that its transaction ids start low whatever ran before in this file.
  const pg = await freshPglite()
  const db = pgliteDb(pg, async () => { await pg.close() })
  const pool = new TokenPool(db, { defaultPool: { size: 50 }, sweepIntervalMs: 0 })
  await pool.start()
  const app = await buildApp({ pool })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(async () => {
    await app.close()
    await pool.stop()
    await db.close()
  })
  const xid = async () => Number((await db.query<{ x: string }>('SELECT txid_current()::text AS x'))[0]!.x)
  const start = await xid()
  assert.ok(start < 970, `a new PGlite starts below xid 970 (at ${start})`)
  // One transaction each, so that the events below straddle xid 1000.
  while (await xid() < 985);
  const leases = []
  for (let i = 0; i < 30; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    leases.push(res.json().data)
  }
  const xids = (await db.query<{ xid: string }>('SELECT xid::text AS xid FROM pool_events ORDER BY id')).map((r) => Number(r.xid))
  assert.ok(xids.some((x) => x < 1000) && xids.some((x) => x >= 1000), `events on both sides of xid 1000: ${xids.join(' ')}`)
  // The head is the newest event by number, not by text ('999' sorts after '1000').
  const h = await head(db)
  assert.equal(Number(h.xid), Math.max(...xids))

  const stream = await SseClient.open(`${address}/api/events`)
  t.after(() => { stream.close() })
  const next = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })).json().data
  const [first] = await stream.waitForCount(1)
  assert.equal(first!.event, 'allocated')
  assert.deepEqual(data(first!), next, 'the first event is the new one, not a replay of the 30 before')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(stream.events.length, 1)
  // And a client resuming from an event below 1000 gets exactly the rest, in order.
  const [firstLease] = await db.query<{ id: number }>('SELECT min(id)::int AS id FROM pool_events WHERE type = \'allocated\'')
  const resumed = await SseClient.open(`${address}/api/events`, { 'last-event-id': String(firstLease!.id) })
  t.after(() => { resumed.close() })
  const replayed = await resumed.waitForCount(30)
  assert.deepEqual(replayed.map(data), [...leases.slice(1), next])
})

describeMultiConnection('the log\'s horizon is this database\'s', () => {
  test('a transaction open in another database on the same server holds no event back', async (t) => {
    const s = await serve(t, 'postgres', { poolSize: 5 })
    const stream = await s.events()
    // A writing transaction elsewhere on the server (another application's batch job, a
    // session left idle in a transaction): it holds a transaction id until it ends.
    const elsewhere = new URL(POSTGRES_URL!)
    elsewhere.pathname = '/postgres'
    const other = new pg.Client({ connectionString: elsewhere.toString() })
    await other.connect()
    t.after(async () => { await other.end() })
    await other.query('BEGIN')
    await other.query('SELECT pg_current_xact_id()')
    const lease = await s.allocate()
    const [event] = await stream.waitForCount(1)
    assert.deepEqual(data(event!), lease)
    // Still open: the event came while it ran, not when it ended.
    assert.equal((await other.query('SELECT pg_current_xact_id()::text AS x')).rows.length, 1)
    await other.query('ROLLBACK')
  })

  test('a transaction open in this database still holds back what committed after it, so the stream keeps its order', async (t) => {
    const { db } = await serve(t, 'postgres', { poolSize: 5 })
    await db.withSession(async (early) => {
      await early.query('BEGIN')
      await early.query("SELECT tp_pool_changed('default')")
      const pool = new TokenPool(db, { defaultPool: { size: 5 }, sweepIntervalMs: 0 })
      await pool.allocate(newId())
      const from = await head(db)
      // The allocation committed, but the earlier transaction may still write before it in
      // the stream's order: nothing past it is settled yet.
      assert.deepEqual((await readAfter(db, from, 10)).map((e) => e.type), [])
      await early.query('COMMIT')
      // Settled soon, not necessarily at once: another transaction of this database (the
      // suite runs files side by side in one database, a schema each) holds the horizon
      // while it runs. Had the head skipped past the early event, it would never come.
      let types: string[] = []
      await until(async () => (types = (await readAfter(db, from, 10)).map((e) => e.type)).length >= 2, 'both events settle', 1500)
      assert.deepEqual(types, ['pool_changed', 'allocated'])
    })
  })
})
