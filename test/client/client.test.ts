import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import {
  TokenPoolClient, TokenPoolError, TokenPoolUnreachableError, type ExportRow, type Lease, type LeaseEvent, type PoolEvent, type Usage,
} from '../../src/client/index.js'
import { newId } from '../../src/domain/ids.js'
import { buildApp, type App } from '../../src/http/app.js'
import { TokenPool } from '../../src/pool/pool.js'
import type { Db } from '../../src/store/db.js'
import { openPostgres } from '../../src/store/pg-db.js'
import { build, travel, type DefaultPoolOptions, type Harness } from '../helpers/app.js'
import { until } from '../helpers/until.js'
import { describeEachBackend, type Backend } from '../helpers/db.js'

/**
 * undici (Node 20's fetch) opens a spare connection after an aborted stream, which never sends a request
 * (nodejs/undici#5845); Node doesn't count it idle, so close() would wait ~40 s for the socket timeouts.
 * It can arrive just after close() starts, so keep dropping connections until the server has closed.
 */
function dropConnectionsOnClose (app: App): void {
  app.addHook('preClose', async () => {
    app.server.closeAllConnections()
    const timer = setInterval(() => { app.server.closeAllConnections() }, 20)
    app.server.once('close', () => { clearInterval(timer) })
  })
}

/** The app on a real socket (an ephemeral port on loopback), and a client pointed at it. */
async function serve (t: TestContext, backend: Backend, opts: DefaultPoolOptions & { adminToken?: string } = {}) {
  const harness: Harness = await build(t, backend, opts)
  dropConnectionsOnClose(harness.app)
  const url = await harness.app.listen({ port: 0, host: '127.0.0.1' })
  return { ...harness, url, client: new TokenPoolClient({ url, adminToken: opts.adminToken }) }
}

const isLeaseEvent = (e: PoolEvent): e is LeaseEvent => ['allocated', 'renewed', 'released', 'cleared'].includes(e.type)

/**
 * The id of the newest event, after making one (a pool created): a stream resumed after it
 * gets every change from then on, however late the server subscribes it. (Resuming after
 * id 0 is not that: the service answers it with a reset once any event exists.)
 */
async function eventHead (client: TokenPoolClient, db: Db): Promise<string> {
  await client.createPool({ name: `marker-${newId().slice(0, 8)}`, size: 1 })
  const [row] = await db.query<{ id: string }>('SELECT max(id)::text AS id FROM pool_events')
  assert.ok(row !== undefined)
  return row.id
}

describeEachBackend('TokenPoolClient', (backend) => {
  test('allocate, get, list, stats and release, typed as the server answers them', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 3 })
    const user = newId()
    const lease: Lease = await client.allocate(user)
    assert.equal(lease.user_id, user)
    assert.equal(lease.expires_in_seconds, 120)
    assert.equal(lease.evicted_user_id, null)
    const again = await client.allocate(user)
    assert.equal(again.lease_id, lease.lease_id)

    const token = await client.get(lease.token_id)
    assert.equal(token.status, 'active')
    assert.equal(token.active_usage?.user_id, user)

    const { tokens, meta } = await client.list()
    assert.equal(tokens.length, 3)
    assert.deepEqual([meta.total, meta.active, meta.available], [3, 1, 2])
    assert.deepEqual((await client.list({ status: 'active' })).tokens.map((tk) => tk.id), [lease.token_id])

    const stats = await client.stats()
    assert.equal(stats.allocations_in_window, 1)
    assert.equal(stats.usage_count.max, 1)

    const ended = await client.release(lease.token_id, user)
    assert.equal(ended.release_reason, 'released')
    assert.equal((await client.get(lease.token_id)).status, 'available')
    assert.equal(await client.ready(), true)
  })

  test('history iterates over every page, newest first, each usage once', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 1 })
    const users: string[] = []
    let tokenId = ''
    for (let i = 0; i < 7; i++) {
      const user = newId()
      users.push(user)
      tokenId = (await client.allocate(user)).token_id
      if (i < 6) await client.release(tokenId, user)
    }
    const seen: Usage[] = []
    for await (const usage of client.history(tokenId, { limit: 2 })) seen.push(usage)
    assert.deepEqual(seen.map((u) => u.user_id), users.toReversed())
    assert.equal(seen[0]?.released_at, null)
    assert.ok(seen.slice(1).every((u) => u.release_reason === 'released'))
    const firstPage = await client.historyPage(tokenId, { limit: 3 })
    assert.equal(firstPage.usages.length, 3)
    assert.equal(typeof firstPage.nextCursor, 'string')
  })

  test('events yields allocated, released and cleared as they happen, and resumes after Last-Event-ID', async (t) => {
    const { client, pool, db } = await serve(t, backend, { poolSize: 2 })
    // Opened before the changes, after the newest event: whatever happens before the server has
    // subscribed is replayed, the rest arrives live; either way, each event once and in order.
    const stream = client.events({ lastEventId: await eventHead(client, db), pool: 'default' })
    const firstEvent = stream.next()
    const [a, b, c] = [newId(), newId(), newId()]
    const la = await client.allocate(a)
    await client.allocate(b)
    await client.release(la.token_id, a)
    await client.allocate(c)
    await travel(db, 121)
    await pool.sweep()
    await client.allocate(a)
    await client.clear()

    const got: LeaseEvent[] = [(await firstEvent).value as LeaseEvent]
    for await (const e of stream) {
      assert.ok(isLeaseEvent(e), e.type)
      // travel() rewrites the stored expiries, which the service records as renewals.
      if (e.type === 'renewed') continue
      got.push(e)
      if (e.type === 'cleared') break
    }
    assert.deepEqual(got.map((e) => [e.type, e.data.user_id]), [
      ['allocated', a], ['allocated', b], ['released', a], ['allocated', c], ['released', b], ['released', c], ['allocated', a], ['cleared', a],
    ])
    const released = got.flatMap((e) => (e.type === 'released' || e.type === 'cleared' ? [e.data.release_reason] : []))
    assert.deepEqual(released, ['released', 'expired', 'expired', 'cleared'])
    const first = got[0]!
    assert.equal(first.type === 'allocated' && first.data.lease_id, la.lease_id)

    // A new stream from the third event on: replays what came after it.
    const resumed: PoolEvent[] = []
    for await (const e of client.events({ lastEventId: got[2]!.id, pool: 'default' })) {
      if (e.type === 'renewed') continue
      resumed.push(e)
      if (resumed.length === got.length - 3) break
    }
    assert.deepEqual(resumed.map((e) => e.id), got.slice(3).map((e) => e.id))
  })
})

describeEachBackend('TokenPoolClient v0.2: pools, renewal, token health, export, keepAlive', (backend) => {
  test('pools: create, list, get, change and delete; a user holds one lease in each pool', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 3 })
    const created = await client.createPool({ name: 'keys', size: 2, lease_ttl_seconds: 30, lease_max_seconds: 60, on_exhausted: 'reject' })
    assert.deepEqual(
      [created.name, created.size, created.lease_ttl_seconds, created.lease_max_seconds, created.on_exhausted, created.user_quota, created.total, created.available],
      ['keys', 2, 30, 60, 'reject', null, 2, 2])
    assert.deepEqual((await client.pools()).map((p) => p.name).sort(), ['default', 'keys'])
    assert.equal((await client.getPool('keys')).size, 2)
    assert.equal((await rejection(client.createPool({ name: 'keys' }))).code, 'pool_exists')
    assert.equal((await rejection(client.getPool('nope'))).code, 'not_found')

    const user = newId()
    const keys = client.pool('keys')
    assert.equal(keys.name, 'keys')
    const inDefault = await client.allocate(user)
    const inKeys = await keys.allocate(user)
    assert.equal(inDefault.pool, 'default')
    assert.equal(inKeys.pool, 'keys')
    assert.equal(inKeys.expires_in_seconds, 30)
    assert.notEqual(inKeys.token_id, inDefault.token_id)
    assert.notEqual(inKeys.lease_id, inDefault.lease_id)
    assert.equal((await keys.allocate(user)).lease_id, inKeys.lease_id, 'the same lease again, in its pool')
    assert.equal((await client.allocate(user)).lease_id, inDefault.lease_id)
    // A token route finds the token in any pool; a pool's handle only in its own.
    assert.equal((await client.get(inKeys.token_id)).pool, 'keys')
    assert.equal((await keys.get(inKeys.token_id)).active_usage?.lease_id, inKeys.lease_id)
    assert.equal((await rejection(keys.get(inDefault.token_id))).code, 'not_found')
    assert.equal((await rejection(keys.release(inDefault.token_id, user))).code, 'not_found')

    const { tokens, meta } = await keys.list()
    assert.deepEqual([tokens.length, meta.total, meta.active, meta.available, meta.cooling, meta.disabled], [2, 2, 1, 1, 0, 0])
    const page1 = await keys.listPage({ limit: 1 })
    assert.equal(page1.tokens.length, 1)
    assert.ok(page1.nextCursor !== null)
    const page2 = await keys.listPage({ limit: 1, cursor: page1.nextCursor })
    assert.deepEqual([...page1.tokens, ...page2.tokens].map((tk) => tk.id), tokens.map((tk) => tk.id))
    assert.equal(page2.nextCursor, null)
    assert.deepEqual((await keys.listPage({ status: 'active' })).tokens.map((tk) => tk.id), [inKeys.token_id])
    assert.equal((await client.list()).tokens.length, 3, 'the client itself lists the default pool')

    const stats = await keys.stats({ leastUsedLimit: 1 })
    assert.deepEqual([stats.pool, stats.total, stats.allocations_in_window, stats.least_used.length, stats.least_used_count], ['keys', 2, 1, 1, 1])
    assert.equal((await client.stats()).pool, 'default')

    const changed = await client.updatePool('keys', { size: 3, user_quota: 5 })
    assert.deepEqual([changed.size, changed.total, changed.user_quota, changed.lease_ttl_seconds], [3, 3, 5, 30])
    const unlimited = await client.updatePool('keys', { user_quota: null })
    assert.deepEqual([unlimited.user_quota, unlimited.size], [null, 3], 'null removes the quota (not 0)')
    assert.equal((await rejection(client.updatePool('default', { size: 5 }))).code, 'managed_by_config')
    assert.equal((await rejection(client.deletePool('default'))).code, 'managed_by_config')

    assert.equal((await rejection(client.deletePool('keys'))).code, 'pool_busy')
    assert.deepEqual(await client.deletePool('keys', { force: true }), { name: 'keys', deleted: true })
    assert.equal((await rejection(client.getPool('keys'))).code, 'not_found')
    assert.deepEqual((await client.pools()).map((p) => p.name), ['default'])
    // Its tokens' histories stay readable by token id; the forced delete ended the lease as cleared.
    const [usage] = (await client.historyPage(inKeys.token_id)).usages
    assert.deepEqual([usage?.lease_id, usage?.release_reason], [inKeys.lease_id, 'cleared'])
    assert.equal((await client.get(inDefault.token_id)).active_usage?.lease_id, inDefault.lease_id, 'the default pool is untouched')
  })

  test('renew moves expires_at and keeps the lease; renewal_limit at the cap; not_holder for anyone else', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 2 })
    await client.createPool({ name: 'beat', size: 2, lease_ttl_seconds: 30, lease_max_seconds: 3600 })
    const user = newId()
    const beat = client.pool('beat')
    const lease = await beat.allocate(user)
    assert.equal(Date.parse(lease.renewable_until) - Date.parse(lease.started_at), 3600_000)
    await sleep(30)
    const renewed = await beat.renew(lease.token_id, user)
    assert.deepEqual([renewed.token_id, renewed.lease_id, renewed.started_at, renewed.renewable_until, renewed.pool],
      [lease.token_id, lease.lease_id, lease.started_at, lease.renewable_until, 'beat'])
    assert.ok(Date.parse(renewed.expires_at) > Date.parse(lease.expires_at), `${renewed.expires_at} > ${lease.expires_at}`)
    const again = await client.renew(lease.token_id, user)
    assert.equal(again.lease_id, lease.lease_id, 'the client itself renews a token of any pool')
    assert.equal((await rejection(beat.renew(lease.token_id, newId()))).code, 'not_holder')
    assert.equal((await client.get(lease.token_id)).active_usage?.expires_at, again.expires_at)

    await client.createPool({ name: 'capped', size: 1, lease_ttl_seconds: 30, lease_max_seconds: 30 })
    const capped = await client.pool('capped').allocate(user)
    assert.equal(capped.renewable_until, capped.expires_at)
    const limit = await rejection(client.pool('capped').renew(capped.token_id, user))
    assert.deepEqual([limit.code, limit.status], ['renewal_limit', 409])
    assert.deepEqual(limit.details, { renewable_until: capped.renewable_until })
  })

  test('cooldown (holder with reallocate, admin), disable and enable, label', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 2 })
    await client.createPool({ name: 'cool', size: 2, cooldown_max_seconds: 600 })
    const cool = client.pool('cool')
    const user = newId()
    const first = await cool.allocate(user)

    const moved = await cool.cooldown(first.token_id, { userId: user, seconds: 30, reallocate: true })
    assert.equal(moved.token.id, first.token_id)
    assert.equal(moved.token.status, 'cooling')
    assert.ok(moved.token.cooling_until !== null && Date.parse(moved.token.cooling_until) > Date.now() + 20_000)
    assert.deepEqual([moved.ended_lease?.lease_id, moved.ended_lease?.release_reason], [first.lease_id, 'cooldown'])
    assert.ok(moved.lease !== null)
    assert.notEqual(moved.lease.token_id, first.token_id)
    assert.ok(moved.lease.lease_id > first.lease_id)
    assert.equal(moved.lease_error, null)

    // The other token cools too: no new lease can be given, the cooldown still stands.
    const stuck = await client.cooldown(moved.lease.token_id, { userId: user, seconds: 30, reallocate: true })
    assert.equal(stuck.token.status, 'cooling')
    assert.equal(stuck.lease, null)
    assert.equal(stuck.lease_error?.code, 'pool_exhausted')
    assert.equal((await rejection(cool.cooldown(first.token_id, { userId: user, seconds: 601 }))).code, 'validation_failed')
    assert.equal((await rejection(cool.cooldown(first.token_id, { userId: newId(), seconds: 5 }))).code, 'not_holder')

    // enable ends a cooldown; disable takes a token out (ending its lease) until enabled.
    assert.equal((await client.enable(first.token_id)).token.status, 'available')
    const again = await cool.allocate(user)
    assert.equal(again.token_id, first.token_id)
    const disabled = await client.disable(first.token_id, 'revoked upstream')
    assert.deepEqual([disabled.token.status, disabled.token.disabled_reason], ['disabled', 'revoked upstream'])
    assert.deepEqual([disabled.ended_lease?.lease_id, disabled.ended_lease?.release_reason], [again.lease_id, 'disabled'])
    assert.equal((await client.disable(first.token_id)).ended_lease, null, 'harmless to repeat')
    assert.equal((await client.get(first.token_id)).status, 'disabled')
    assert.equal((await rejection(cool.cooldown(first.token_id, { seconds: 5 }))).code, 'token_disabled')
    const enabled = await cool.enable(first.token_id)
    assert.deepEqual([enabled.token.status, enabled.token.disabled_reason], ['available', null])

    // An admin cooldown of a free token; a pool's handle refuses a token of another pool.
    assert.equal((await cool.cooldown(first.token_id, { seconds: 5 })).token.status, 'cooling')
    const defaultToken = (await client.list()).tokens[0]!.id
    assert.equal((await rejection(cool.disable(defaultToken))).code, 'not_found')

    assert.equal((await client.label(first.token_id, 'key #7 (billing team)')).label, 'key #7 (billing team)')
    assert.equal((await cool.get(first.token_id)).label, 'key #7 (billing team)')
    assert.equal((await cool.list()).tokens.find((tk) => tk.id === first.token_id)?.label, 'key #7 (billing team)')
    assert.equal((await cool.label(first.token_id, null)).label, null, 'null removes the label (not "")')
    assert.equal((await rejection(client.label(first.token_id, 'x'.repeat(101)))).code, 'validation_failed')
  })

  test('export: every usage of the pool exactly once, as NDJSON rows or CSV, within since and until', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 2 })
    await client.createPool({ name: 'exp', size: 2 })
    const exp = client.pool('exp')
    const leases: Lease[] = []
    for (let i = 0; i < 7; i++) {
      const user = newId()
      const lease = await exp.allocate(user)
      leases.push(lease)
      if (i < 5) await exp.release(lease.token_id, user)
      if (i === 2) await sleep(20)
    }
    await client.allocate(newId()) // another pool's usage: not in this export

    const rows: ExportRow[] = []
    for await (const row of exp.export()) rows.push(row)
    assert.deepEqual(rows.map((r) => r.lease_id).sort((a, b) => a - b), leases.map((l) => l.lease_id).sort((a, b) => a - b))
    assert.ok(rows.every((r) => r.pool === 'exp'))
    assert.deepEqual(rows.map((r) => r.started_at), rows.map((r) => r.started_at).sort(), 'oldest first')
    for (const lease of leases) {
      const row = rows.find((r) => r.lease_id === lease.lease_id)
      assert.deepEqual([row?.token_id, row?.user_id, row?.started_at], [lease.token_id, lease.user_id, lease.started_at])
    }
    assert.deepEqual(rows.map((r) => r.release_reason), ['released', 'released', 'released', 'released', 'released', null, null])
    // The same usages as the tokens' histories, each once.
    const history: Usage[] = []
    for (const id of new Set(leases.map((l) => l.token_id))) for await (const u of client.history(id)) history.push(u)
    assert.deepEqual(history.map((u) => u.lease_id).sort((a, b) => a - b), rows.map((r) => r.lease_id).sort((a, b) => a - b))

    const csv = await exp.export({ format: 'csv' })
    const lines = csv.trimEnd().split('\n')
    assert.equal(lines[0], 'pool,token_id,lease_id,user_id,started_at,expires_at,released_at,release_reason')
    assert.equal(lines.length, 1 + leases.length)
    assert.ok(lines.slice(1).every((l) => l.startsWith('exp,')))
    assert.match(lines.at(-1)!, /,,$/, 'an active usage: released_at and release_reason are empty cells')

    const since = leases[3]!.started_at
    const later: ExportRow[] = []
    for await (const row of exp.export({ since: new Date(since) })) later.push(row)
    assert.deepEqual(later.map((r) => r.lease_id), leases.slice(3).map((l) => l.lease_id))
    const earlier: ExportRow[] = []
    for await (const row of exp.export({ until: since })) earlier.push(row)
    assert.deepEqual(earlier.map((r) => r.lease_id), leases.slice(0, 3).map((l) => l.lease_id))
    let text = ''
    for await (const chunk of exp.exportText({ since, until: since })) text += chunk
    assert.equal(text, '')

    const defaultRows: ExportRow[] = []
    for await (const row of client.export()) defaultRows.push(row)
    assert.deepEqual(defaultRows.map((r) => r.pool), ['default'])
    await assert.rejects(async () => { for await (const row of client.pool('nope').export()) assert.fail(String(row)) },
      (err: unknown) => err instanceof TokenPoolError && err.code === 'not_found')
  })

  test('keepAlive renews at a third of the TTL until stopped; onLost at the renewal cap and when the lease ends', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 2 })
    await client.createPool({ name: 'alive', size: 2, lease_ttl_seconds: 2.4, lease_max_seconds: 600 })
    const alive = client.pool('alive')
    const user = newId()
    const lease = await alive.allocate(user)
    const renewals: Lease[] = []
    const lost: TokenPoolError[] = []
    // The TTL given: measured from expires_at it shrinks when the answer came late (a busy
    // machine), and so does the interval (13 renewals once in CI).
    const kept = alive.keepAlive(lease, { ttlSeconds: 2.4, onRenew: (l) => renewals.push(l), onLost: (err) => lost.push(err) })
    // More than twice the TTL. Renewals come every 0.8 s: one may be late by up to 1.6 s (a
    // busy machine, PGlite holding the event loop) before the lease runs out.
    await sleep(5400)
    kept.stop()
    assert.equal(kept.stopped, true)
    assert.deepEqual(lost, [])
    assert.ok(renewals.length >= 3 && renewals.length <= 9, `${renewals.length} renewals in 5.4 s at a TTL of 2.4 s`)
    assert.ok(renewals.every((l) => l.lease_id === lease.lease_id))
    assert.equal(kept.lease.lease_id, lease.lease_id)
    assert.ok(Date.parse(kept.lease.expires_at) > Date.parse(lease.expires_at) + 2000)
    const detail = await client.get(lease.token_id)
    assert.deepEqual([detail.status, detail.active_usage?.lease_id], ['active', lease.lease_id], 'alive past its first expiry')
    const count = renewals.length
    await sleep(3200)
    assert.equal(renewals.length, count, 'no renewal after stop()')
    assert.equal((await rejection(alive.renew(lease.token_id, user))).code, 'not_holder', 'without renewals the lease ran out')

    // At the cap: renewal_limit ends the keeping (the lease runs to its end). The cap is
    // reached by 4.8 s and the next renewal is due 0.8 s later: 1.6 s of slack before 7.2 s.
    await client.createPool({ name: 'short', size: 1, lease_ttl_seconds: 2.4, lease_max_seconds: 7.2 })
    const short = await client.pool('short').allocate(user)
    const capped = await new Promise<TokenPoolError>((resolve) => { client.keepAlive(short, { userId: user, onLost: resolve }) })
    assert.equal(capped.code, 'renewal_limit')

    // Released meanwhile: not_holder ends it.
    const other = await alive.allocate(user)
    const released = new Promise<TokenPoolError>((resolve) => { alive.keepAlive(other, { intervalMs: 100, onLost: resolve }) })
    await alive.release(other.token_id, user)
    assert.equal((await released).code, 'not_holder')

    // A throwing onRenew is handed to onError, and the renewals go on.
    const third = await alive.allocate(user)
    const errors: Error[] = []
    let calls = 0
    const throwing = alive.keepAlive(third, { intervalMs: 100, onRenew: () => { calls++; throw new Error('caller bug') }, onError: (err) => errors.push(err) })
    await until(async () => calls >= 2, 'renewed twice despite the throw')
    throwing.stop()
    assert.ok(errors.length >= 2 && errors.every((e) => e.message === 'caller bug'))
  })

  test("events({pool}) keeps one pool's events, of every type", async (t) => {
    const { client, db } = await serve(t, backend, { poolSize: 2 })
    await client.createPool({ name: 'ev-a', size: 2, lease_ttl_seconds: 30, lease_max_seconds: 600 })
    await client.createPool({ name: 'ev-b', size: 2 })
    const from = await eventHead(client, db)
    const a = client.pool('ev-a')
    const user = newId()
    await client.pool('ev-b').allocate(user)
    const lease = await a.allocate(user)
    const renewal = await a.renew(lease.token_id, user)
    await a.cooldown(lease.token_id, { userId: user, seconds: 30 })
    await client.disable(lease.token_id, 'broken')
    await client.enable(lease.token_id)
    await client.pool('ev-b').clear()
    await client.deletePool('ev-b', { force: true })
    await client.updatePool('ev-a', { size: 3 })

    const read = async (events: AsyncGenerator<PoolEvent>) => {
      const got: PoolEvent[] = []
      for await (const e of events) {
        got.push(e)
        if (e.type === 'pool_changed') break
      }
      return got
    }
    const got = await read(client.events({ pool: 'ev-a', lastEventId: from }))
    assert.ok(got.every((e) => e.data.pool === 'ev-a' || e.type === 'reset'), JSON.stringify(got))
    assert.deepEqual(got.map((e) => e.type), ['allocated', 'renewed', 'released', 'cooling', 'disabled', 'enabled', 'pool_changed'])
    const [allocated, renewed, released, cooling, disabled, , changed] = got
    assert.equal(allocated?.type === 'allocated' && allocated.data.lease_id, lease.lease_id)
    assert.equal(renewed?.type === 'renewed' && renewed.data.lease_id, lease.lease_id)
    assert.deepEqual(renewed?.data, renewal, 'the lease as renew answered it')
    assert.equal(released?.type === 'released' && released.data.release_reason, 'cooldown')
    assert.equal(cooling?.type === 'cooling' && cooling.data.id, lease.token_id)
    assert.equal(disabled?.type === 'disabled' && disabled.data.disabled_reason, 'broken')
    assert.equal(changed?.type === 'pool_changed' && changed.data.deleted !== true && changed.data.size, 3)
    // A pool's handle streams its own pool's events; every pool's without a filter.
    assert.deepEqual((await read(a.events({ lastEventId: from }))).map((e) => e.id), got.map((e) => e.id))
    const all: PoolEvent[] = []
    for await (const e of client.events({ lastEventId: from })) {
      all.push(e)
      if (e.id === got.at(-1)!.id) break
    }
    assert.ok(all.some((e) => e.type === 'cleared' && e.data.pool === 'ev-b'))
    assert.ok(all.some((e) => e.type === 'pool_changed' && e.data.pool === 'ev-b' && e.data.deleted === true))
    await assert.rejects(client.events({ pool: 'nope', reconnect: false }).next(), (err: unknown) => err instanceof TokenPoolError && err.code === 'not_found')
  })
})

const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describeEachBackend('TokenPoolClient.events across a restart', (backend) => {
  test('reconnects by itself with Last-Event-ID and misses nothing that happened while the server was away', async (t) => {
    const port = backend === 'pglite' ? 4530 : 4531
    const { app, pool, db } = await build(t, backend, { poolSize: 3 })
    dropConnectionsOnClose(app)
    await app.listen({ port, host: '127.0.0.1' })
    const client = new TokenPoolClient({ url: `http://127.0.0.1:${port}` })
    const stream = client.events({ lastEventId: await eventHead(client, db), pool: 'default' })

    const a = newId()
    await client.allocate(a)
    const first = (await stream.next()).value as LeaseEvent
    assert.equal(first.data.user_id, a)

    // The server goes away; a change happens meanwhile (another node would make it; here the same database).
    const next = stream.next()
    await app.close()
    const b = newId()
    await pool.allocate(b)

    // A new process on the same port and database: the client comes back to it within its retry delay.
    const restarted = new TokenPool(db, { defaultPool: { size: 3, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
    await restarted.start()
    const app2 = await buildApp({ pool: restarted })
    dropConnectionsOnClose(app2)
    t.after(async () => { await app2.close() })
    await app2.listen({ port, host: '127.0.0.1' })

    const missed = (await next).value as LeaseEvent
    assert.deepEqual([missed.type, missed.data.user_id], ['allocated', b])
    assert.ok(Number(missed.id) > Number(first.id))
    const c = newId()
    await client.allocate(c)
    const live = (await stream.next()).value as LeaseEvent
    assert.equal(live.data.user_id, c)
    await stream.return(undefined)
  })
})

test('errors carry the contract code, status, details, Retry-After and the request id', async (t) => {
  const { client } = await serve(t, 'pglite', { poolSize: 1, onExhausted: 'reject', adminToken: 'sesame' })
  const a = newId()
  const lease = await client.allocate(a)

  const stranger = newId()
  const notHolder = await rejection(client.release(lease.token_id, stranger, { requestId: 'req-42' }))
  assert.equal(notHolder.code, 'not_holder')
  assert.equal(notHolder.status, 409)
  assert.equal(notHolder.requestId, 'req-42')
  assert.equal(notHolder.details, null, 'nothing to add: the caller sent both ids')

  const exhausted = await rejection(client.allocate(newId()))
  assert.equal(exhausted.code, 'pool_exhausted')
  assert.ok(exhausted.retryAfterSeconds !== undefined && exhausted.retryAfterSeconds >= 1 && exhausted.retryAfterSeconds <= 120)

  const invalid = await rejection(client.allocate('not-a-uuid'))
  assert.equal(invalid.code, 'validation_failed')
  assert.equal(invalid.status, 422)
  assert.equal((invalid.details as { field: string }).field, 'user_id')

  const missing = await rejection(client.get(newId()))
  assert.equal(missing.code, 'not_found')

  const anonymous = new TokenPoolClient({ url: client.url })
  assert.equal((await rejection(anonymous.clear())).code, 'unauthorized')
  assert.deepEqual(await client.clear(), { cleared_tokens: 1 })
})

test('an unreachable service is a TokenPoolUnreachableError, not a contract error', async () => {
  const client = new TokenPoolClient({ url: 'http://127.0.0.1:4598', timeoutMs: 2000 })
  await assert.rejects(client.stats(), (err: unknown) => {
    assert.ok(err instanceof TokenPoolUnreachableError)
    assert.match(err.message, /ECONNREFUSED/)
    return true
  })
  const events = client.events({ reconnect: false })
  await assert.rejects(events.next(), TokenPoolUnreachableError)
})

async function rejection (promise: Promise<unknown>): Promise<TokenPoolError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof TokenPoolError, String(err))
    return err
  }
  assert.fail('expected a TokenPoolError')
}

test('events: a 503 (no database) is a TokenPoolError without reconnect, and waited out with it', async (t) => {
  // A real client to a port where no PostgreSQL listens: the service is up, its database is not.
  const db = openPostgres('postgres://postgres@127.0.0.1:4599/none', { connectionTimeoutMs: 500 })
  const pool = new TokenPool(db, { defaultPool: { size: 3, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
  const app = await buildApp({ pool })
  dropConnectionsOnClose(app)
  const seen = { tries: 0 }
  app.addHook('onResponse', async (request) => { if (request.url === '/api/events') seen.tries++ })
  t.after(async () => {
    await app.close()
    await db.close()
  })
  const client = new TokenPoolClient({ url: await app.listen({ port: 0, host: '127.0.0.1' }) })

  await assert.rejects(client.events({ reconnect: false }).next(), (err: unknown) => {
    assert.ok(err instanceof TokenPoolError)
    assert.equal(err.code, 'unavailable')
    return true
  })
  // With reconnect (the default) it keeps trying until told to stop, and then ends quietly.
  const stop = new AbortController()
  const attempts = (async () => { for await (const e of client.events({ signal: stop.signal })) assert.fail(`no event expected: ${e.id}`) })()
  const before = seen.tries
  for (let i = 0; i < 100 && seen.tries < before + 2; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  stop.abort()
  await attempts
  assert.ok(seen.tries >= before + 2, `${seen.tries - before} attempts`)
})
