import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import { TokenPoolClient, TokenPoolError, TokenPoolUnreachableError, type Lease, type PoolEvent, type Usage } from '../../src/client/index.js'
import { buildApp, type App } from '../../src/http/app.js'
import { TokenPool } from '../../src/pool/pool.js'
import { openPostgres } from '../../src/store/pg-db.js'
import { build, travel, type DefaultPoolOptions, type Harness } from '../helpers/app.js'
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

describeEachBackend('TokenPoolClient', (backend) => {
  test('allocate, get, list, stats and release, typed as the server answers them', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 3 })
    const user = randomUUID()
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
      const user = randomUUID()
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
    // Opened before the changes, from the start of this fresh pool's stream: whatever happens before the
    // server has subscribed is replayed, the rest arrives live; either way, each event once and in order.
    const stream = client.events({ lastEventId: '0' })
    const firstEvent = stream.next()
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    const la = await client.allocate(a)
    await client.allocate(b)
    await client.release(la.token_id, a)
    await client.allocate(c)
    await travel(db, 121)
    await pool.sweep()
    await client.allocate(a)
    await client.clear()

    const got: PoolEvent[] = [(await firstEvent).value as PoolEvent]
    for await (const e of stream) {
      got.push(e)
      if (e.type === 'cleared') break
    }
    assert.deepEqual(got.map((e) => [e.type, e.data.user_id]), [
      ['allocated', a], ['allocated', b], ['released', a], ['allocated', c], ['released', b], ['released', c], ['allocated', a], ['cleared', a],
    ])
    const released = got.flatMap((e) => (e.type === 'allocated' ? [] : [e.data.release_reason]))
    assert.deepEqual(released, ['released', 'expired', 'expired', 'cleared'])
    const first = got[0]!
    assert.equal(first.type === 'allocated' && first.data.lease_id, la.lease_id)

    // A new stream from the third event on: replays what came after it.
    const resumed: PoolEvent[] = []
    for await (const e of client.events({ lastEventId: got[2]!.id })) {
      resumed.push(e)
      if (resumed.length === got.length - 3) break
    }
    assert.deepEqual(resumed.map((e) => e.id), got.slice(3).map((e) => e.id))
  })
})

describeEachBackend('TokenPoolClient.events across a restart', (backend) => {
  test('reconnects by itself with Last-Event-ID and misses nothing that happened while the server was away', async (t) => {
    const port = backend === 'pglite' ? 4530 : 4531
    const { app, pool, db } = await build(t, backend, { poolSize: 3 })
    dropConnectionsOnClose(app)
    await app.listen({ port, host: '127.0.0.1' })
    const client = new TokenPoolClient({ url: `http://127.0.0.1:${port}` })
    const stream = client.events({ lastEventId: '0' })

    const a = randomUUID()
    await client.allocate(a)
    const first = (await stream.next()).value as PoolEvent
    assert.equal(first.data.user_id, a)

    // The server goes away; a change happens meanwhile (another node would make it; here the same database).
    const next = stream.next()
    await app.close()
    const b = randomUUID()
    await pool.allocate(b)

    // A new process on the same port and database: the client comes back to it within its retry delay.
    const restarted = new TokenPool(db, { defaultPool: { size: 3, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
    await restarted.start()
    const app2 = await buildApp({ pool: restarted })
    dropConnectionsOnClose(app2)
    t.after(async () => { await app2.close() })
    await app2.listen({ port, host: '127.0.0.1' })

    const missed = (await next).value as PoolEvent
    assert.deepEqual([missed.type, missed.data.user_id], ['allocated', b])
    assert.ok(Number(missed.id) > Number(first.id))
    const c = randomUUID()
    await client.allocate(c)
    const live = (await stream.next()).value as PoolEvent
    assert.equal(live.data.user_id, c)
    await stream.return(undefined)
  })
})

test('errors carry the contract code, status, details, Retry-After and the request id', async (t) => {
  const { client } = await serve(t, 'pglite', { poolSize: 1, onExhausted: 'reject', adminToken: 'sesame' })
  const a = randomUUID()
  const lease = await client.allocate(a)

  const stranger = randomUUID()
  const notHolder = await rejection(client.release(lease.token_id, stranger, { requestId: 'req-42' }))
  assert.equal(notHolder.code, 'not_holder')
  assert.equal(notHolder.status, 409)
  assert.equal(notHolder.requestId, 'req-42')
  assert.deepEqual(notHolder.details, { token_id: lease.token_id, user_id: stranger })

  const exhausted = await rejection(client.allocate(randomUUID()))
  assert.equal(exhausted.code, 'pool_exhausted')
  assert.ok(exhausted.retryAfterSeconds !== undefined && exhausted.retryAfterSeconds >= 1 && exhausted.retryAfterSeconds <= 120)

  const invalid = await rejection(client.allocate('not-a-uuid'))
  assert.equal(invalid.code, 'validation_failed')
  assert.equal(invalid.status, 422)
  assert.equal((invalid.details as { field: string }).field, 'user_id')

  const missing = await rejection(client.get(randomUUID()))
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
