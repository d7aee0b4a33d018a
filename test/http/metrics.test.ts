import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { buildApp, type App } from '../../src/http/app.js'
import { TokenPool } from '../../src/pool/pool.js'
import { openPostgres } from '../../src/store/pg-db.js'
import { build, json, travel } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'

/** Prometheus text → { 'name{a="b"}': value }, labels as written by prom-client (sorted as declared). */
async function scrape (app: App): Promise<Map<string, number>> {
  const res = await app.inject('/metrics')
  assert.equal(res.statusCode, 200)
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  const out = new Map<string, number>()
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

const allocate = async (app: App, user = newId()) =>
  (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: user }) })).json().data

describeEachBackend('GET /metrics', (backend) => {
  test('counts allocations, evictions, releases, clears and expiries as they happen', async (t) => {
    const { app, pool, db } = await build(t, backend, { poolSize: 2 })
    const a = newId()
    const first = await allocate(app, a)
    await allocate(app, a) // the same lease again: not an allocation
    await allocate(app)
    const third = await allocate(app) // full: evicts a
    assert.equal(third.evicted_user_id, a)
    await app.inject({ method: 'POST', url: `/api/tokens/${third.token_id}/release`, ...json({ user_id: third.user_id }) })
    await allocate(app)
    await travel(db, 121) // both leases run out
    assert.equal(await pool.sweep(), 2)
    await allocate(app)
    await app.inject({ method: 'POST', url: '/api/tokens/clear' })

    const m = await scrape(app)
    assert.equal(m.get('token_pool_allocations_total{pool="default"}'), 5)
    assert.equal(m.get('token_pool_evictions_total{pool="default"}'), 1)
    assert.equal(m.get('token_pool_releases_total{pool="default"}'), 1)
    assert.equal(m.get('token_pool_expiries_total{pool="default"}'), 2)
    assert.equal(m.get('token_pool_clears_total{pool="default"}'), 1)
    assert.equal(m.get('token_pool_allocation_duration_seconds_count'), 6)
    assert.ok(first.lease_id >= 1)
  })

  test('counts a lease that ran out once, when an allocation writes its end before the sweep does', async (t) => {
    const { app, pool, db } = await build(t, backend, { poolSize: 2 })
    const a = newId()
    const first = await allocate(app, a)
    const second = await allocate(app)
    const ended: string[] = []
    pool.on('change', (e) => { if (e.type === 'released') ended.push(`${e.lease.leaseId} ${e.lease.releaseReason}`) })
    await travel(db, 121) // both leases run out; no sweep runs
    await allocate(app, a) // a's own lease: ended as expired before its new one
    await allocate(app) // the other token: its lease ended as expired by the grant
    assert.equal(await pool.sweep(), 0) // nothing left for the sweep

    assert.deepEqual(ended.sort(), [`${first.lease_id} expired`, `${second.lease_id} expired`].sort())
    const m = await scrape(app)
    assert.equal(m.get('token_pool_expiries_total{pool="default"}'), 2)
    assert.equal(m.get('token_pool_allocations_total{pool="default"}'), 4)
    assert.equal(m.get('token_pool_evictions_total{pool="default"}') ?? 0, 0)
  })

  test('times waits in the queue by outcome, and the waiting gauge counts the queue', async (t) => {
    const { app, pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject' })
    const a = newId()
    const b = newId()
    const held = await pool.allocate(a)
    let queued!: () => void
    const inQueue = new Promise<void>((resolve) => { queued = resolve })
    const waiter = pool.allocate(b, 'default', { waitSeconds: 5, onQueued: () => { queued() } })
    await inQueue

    const during = await scrape(app)
    assert.equal(during.get('token_pool_waiting_requests{pool="default"}'), 1)
    assert.equal(during.get('token_pool_wait_duration_seconds_count{pool="default",outcome="allocated"}') ?? 0, 0)

    await pool.release(held.tokenId, a)
    const lease = await waiter
    assert.equal(lease.userId, b)

    const m = await scrape(app)
    assert.equal(m.get('token_pool_waiting_requests{pool="default"}'), 0)
    assert.equal(m.get('token_pool_wait_duration_seconds_count{pool="default",outcome="allocated"}'), 1)
    assert.equal(m.get('token_pool_wait_duration_seconds_bucket{le="+Inf",pool="default",outcome="allocated"}'), 1)
    const seconds = m.get('token_pool_wait_duration_seconds_sum{pool="default",outcome="allocated"}')!
    assert.ok(seconds > 0 && seconds < 5, String(seconds))
    assert.equal(m.get('token_pool_wait_duration_seconds_count{pool="default",outcome="timed_out"}') ?? 0, 0)
  })

  test('reads the pool state from the database at scrape time, so a restarted process reports it right', async (t) => {
    const { app, db } = await build(t, backend, { poolSize: 3, usageWindowHours: 24 })
    await allocate(app)
    await allocate(app)

    // A new process on the same database: its counters start at 0, its gauges do not.
    const restarted = new TokenPool(db, { defaultPool: { size: 3, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
    await restarted.start()
    const app2 = await buildApp({ pool: restarted })
    t.after(async () => { await app2.close() })

    const m = await scrape(app2)
    // A fresh process has counted nothing: no series of the counter yet.
    assert.equal(m.get('token_pool_allocations_total{pool="default"}') ?? 0, 0)
    assert.equal(m.get('token_pool_size_tokens{pool="default"}'), 3)
    assert.equal(m.get('token_pool_tokens_active{pool="default"}'), 2)
    assert.equal(m.get('token_pool_tokens_available{pool="default"}'), 1)
    assert.equal(m.get('token_pool_window_allocations{pool="default"}'), 2)
    assert.equal(m.get('token_pool_window_usage_count{pool="default",stat="min"}'), 0)
    assert.equal(m.get('token_pool_window_usage_count{pool="default",stat="max"}'), 1)
    assert.equal(m.get('token_pool_tokens{pool="default",state="active"}'), 2)
    assert.equal(m.get('token_pool_tokens{pool="default",state="available"}'), 1)
    assert.equal(m.get('token_pool_tokens{pool="default",state="cooling"}'), 0)
    assert.equal(m.get('token_pool_tokens{pool="default",state="disabled"}'), 0)
    assert.equal(m.get('token_pool_waiting_requests{pool="default"}'), 0)
    assert.equal(m.get('token_pool_database_up'), 1)
    const stats = (await app2.inject('/api/stats')).json().data
    assert.equal(m.get('token_pool_window_start_time_seconds{pool="default"}'), Date.parse(stats.window_started_at) / 1000)
    assert.equal(m.get('token_pool_window_reset_time_seconds{pool="default"}'), Date.parse(stats.window_resets_at) / 1000)
  })
})

test('times HTTP requests by method, route template and status; unknown routes share one label', async (t) => {
  const { app } = await build(t, 'pglite')
  const lease = await allocate(app)
  await app.inject(`/api/tokens/${lease.token_id}`)
  await app.inject(`/api/tokens/${newId()}`)
  await app.inject(`/api/tokens/${newId()}`)
  await app.inject('/no/such/route')
  const m = await scrape(app)
  const h = 'token_pool_http_request_duration_seconds'
  assert.equal(m.get(`${h}_count{method="GET",route="/api/tokens/:token_id",status_code="200"}`), 1)
  assert.equal(m.get(`${h}_count{method="GET",route="/api/tokens/:token_id",status_code="404"}`), 2)
  assert.equal(m.get(`${h}_count{method="POST",route="/api/tokens/allocate",status_code="200"}`), 1)
  assert.equal(m.get(`${h}_count{method="GET",route="unmatched",status_code="404"}`), 1)
  assert.equal(m.get(`${h}_bucket{le="+Inf",method="GET",route="/api/tokens/:token_id",status_code="404"}`), 2)
  // No raw URLs (one series per token id would be unbounded).
  assert.ok(![...m.keys()].some((k) => k.includes(lease.token_id)))
})

test('includes the default process metrics, and each app has its own registry', async (t) => {
  const { app, pool } = await build(t, 'pglite')
  // A second app in the same process must not collide with the first's metrics (no global registry).
  const other = await buildApp({ pool })
  await allocate(other)
  assert.equal((await scrape(other)).get('token_pool_allocations_total{pool="default"}'), 1)
  await other.close()
  await allocate(app)
  // The first app counts its pool's allocations, both of them; the closed one stopped listening.
  assert.equal(pool.listenerCount('change') >= 1, true)
  assert.equal(pool.listenerCount('waited'), 1)
  const m = await scrape(app)
  assert.equal(m.get('token_pool_allocations_total{pool="default"}'), 2)
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
    assert.ok(m.has(name), name)
  }
})

test('with the database down, /metrics still answers: database_up 0 and no stale pool figures', async (t) => {
  // A real client to a port where nothing listens (in this suite's range).
  const db = openPostgres('postgres://postgres@127.0.0.1:4599/none', { connectionTimeoutMs: 1000 })
  const pool = new TokenPool(db, { defaultPool: { size: 3, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
  const app = await buildApp({ pool })
  t.after(async () => {
    await app.close()
    await db.close()
  })
  const m = await scrape(app)
  assert.equal(m.get('token_pool_database_up'), 0)
  assert.equal([...m.keys()].some((k) => k.startsWith('token_pool_tokens_active')), false)
  assert.ok(m.has('process_cpu_user_seconds_total'))
})
