import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import { TokenPoolClient, TokenPoolError, type Lease, type QueueState } from '../../src/client/index.js'
import type { App } from '../../src/http/app.js'
import { build, type DefaultPoolOptions } from '../helpers/app.js'
import { describeEachBackend, type Backend } from '../helpers/db.js'
import { until } from '../helpers/until.js'

// Waiting (rule 12) through the typed client: a real server on a real socket, real HTTP.

/** As in client.test.ts: an aborted stream leaves a spare undici connection that close() would wait on. */
function dropConnectionsOnClose (app: App): void {
  app.addHook('preClose', async () => {
    app.server.closeAllConnections()
    const timer = setInterval(() => { app.server.closeAllConnections() }, 20)
    app.server.once('close', () => { clearInterval(timer) })
  })
}

async function serve (t: TestContext, backend: Backend, opts: DefaultPoolOptions = {}) {
  const harness = await build(t, backend, opts)
  dropConnectionsOnClose(harness.app)
  const url = await harness.app.listen({ port: 0, host: '127.0.0.1' })
  return { ...harness, url, client: new TokenPoolClient({ url }) }
}

async function rejection (promise: Promise<unknown>): Promise<TokenPoolError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof TokenPoolError, String(err))
    return err
  }
  assert.fail('expected a TokenPoolError')
}

describeEachBackend('TokenPoolClient waiting', (backend) => {
  test('allocate with wait: queued (position 1, served by the holder\'s expiry), then the lease on that token once it is released', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 1, onExhausted: 'reject' })
    const [a, b] = [randomUUID(), randomUUID()]
    const held = await client.allocate(a)
    const seen: QueueState[] = []
    const waiting = client.allocate(b, { wait: 30, onQueued: (q) => { seen.push(q) } })
    let settled = false
    waiting.then(() => { settled = true }, () => { settled = true })
    await until(() => seen.length > 0, 'a queued event', 1000)
    assert.equal(settled, false, 'still waiting while the token is held')
    const first = seen[0]!
    assert.deepEqual([first.position, first.waiting], [1, 1])
    assert.ok(first.estimatedGrantAt instanceof Date)
    assert.equal(first.estimatedGrantAt.getTime(), Date.parse(held.expires_at), 'served by the holder\'s expiry at the latest')

    await client.release(held.token_id, a)
    const lease: Lease = await waiting
    assert.equal(lease.token_id, held.token_id)
    assert.equal(lease.user_id, b)
    assert.ok(lease.lease_id > held.lease_id)
    assert.ok(seen.every((q) => q.position === 1))
  })

  test('a pool handle waits the same way; a free token or a lease already held answers at once, without queueing', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 1 })
    await client.createPool({ name: 'queue', size: 1, on_exhausted: 'reject', max_wait_seconds: 30 })
    const q = client.pool('queue')
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    const onQueued = (state: QueueState) => { assert.fail(`not queued: ${JSON.stringify(state)}`) }
    const held = await q.allocate(a, { wait: 10, onQueued })
    assert.equal(held.pool, 'queue')
    assert.equal((await q.allocate(a, { wait: 10, onQueued })).lease_id, held.lease_id)

    const seen: Array<[number, number]> = []
    const first = q.allocate(b, { wait: 20, onQueued: (s) => { seen.push([s.position, s.waiting]) } })
    await until(() => seen.length > 0, 'b queued', 1000)
    const second: Array<[number, number]> = []
    const next = q.allocate(c, { wait: 20, onQueued: (s) => { second.push([s.position, s.waiting]) } })
    await until(() => second.length > 0, 'c queued', 1000)
    assert.deepEqual(second[0], [2, 2])
    await until(() => seen.some(([, waiting]) => waiting === 2), 'b told that two wait', 1000)

    await q.release(held.token_id, a)
    const leaseB = await first
    assert.deepEqual([leaseB.user_id, leaseB.token_id], [b, held.token_id])
    await until(() => second.some(([position, waiting]) => position === 1 && waiting === 1), 'c moved up to position 1', 1000)
    await q.release(leaseB.token_id, b)
    assert.equal((await next).user_id, c)
  })

  test('a wait that runs out is pool_exhausted (409, Retry-After from the stream); above max_wait_seconds a 422 on wait_seconds', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 1, onExhausted: 'reject' })
    const held = await client.allocate(randomUUID())
    const seen: QueueState[] = []
    const started = Date.now()
    const timedOut = await rejection(client.allocate(randomUUID(), { wait: 0.6, onQueued: (q) => { seen.push(q) }, requestId: 'wait-1' }))
    assert.ok(Date.now() - started >= 500, `waited ${Date.now() - started} ms`)
    assert.equal(seen.length >= 1, true, 'it queued first')
    assert.deepEqual([timedOut.code, timedOut.status, timedOut.requestId], ['pool_exhausted', 409, 'wait-1'])
    assert.equal((timedOut.details as { pool: string }).pool, 'default')
    assert.ok(timedOut.retryAfterSeconds !== undefined && timedOut.retryAfterSeconds >= 1 && timedOut.retryAfterSeconds <= 120, String(timedOut.retryAfterSeconds))

    // Without onQueued the same stream is read; the error is the same.
    assert.equal((await rejection(client.allocate(randomUUID(), { wait: 0.3 }))).code, 'pool_exhausted')
    // wait 0 refuses at once, as without wait.
    assert.equal((await rejection(client.allocate(randomUUID(), { wait: 0 }))).status, 409)

    const tooLong = await rejection(client.allocate(randomUUID(), { wait: 61 }))
    assert.deepEqual([tooLong.code, tooLong.status], ['validation_failed', 422])
    assert.equal((tooLong.details as { field: string }).field, 'wait_seconds')
    await client.createPool({ name: 'brief', size: 1, max_wait_seconds: 2 })
    const brief = await rejection(client.pool('brief').allocate(randomUUID(), { wait: 2.5 }))
    assert.deepEqual([brief.code, (brief.details as { field: string }).field], ['validation_failed', 'wait_seconds'])
    assert.equal((await rejection(client.allocate(randomUUID(), { wait: -1 }))).code, 'validation_failed')
    assert.equal((await client.get(held.token_id)).status, 'active')
  })

  test('the request timeout stretches by the wait; aborting the signal leaves the queue', async (t) => {
    const { client, url } = await serve(t, backend, { poolSize: 1, onExhausted: 'reject' })
    // Only the waiting call goes through the short timeout: a loaded machine may take longer
    // than 300 ms over the others.
    const brisk = new TokenPoolClient({ url, timeoutMs: 300 })
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    const held = await client.allocate(a)
    // Released after 1 s: three times the client's timeout, well within timeout + wait.
    let queued = false
    const patient = brisk.allocate(b, { wait: 5, onQueued: () => { queued = true } })
    await until(() => queued, 'b queued', 1000)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await client.release(held.token_id, a)
    const leaseB = await patient
    assert.equal(leaseB.user_id, b)

    // c queues, then gives up: it leaves the queue, and the freed token goes to whoever asks next.
    const stop = new AbortController()
    let cQueued = false
    const leaving = client.allocate(c, { wait: 20, signal: stop.signal, onQueued: () => { cQueued = true } })
    await until(() => cQueued, 'c queued', 1000)
    stop.abort(new Error('gave up'))
    await assert.rejects(leaving, { message: 'gave up' })
    const meta = await client.list()
    assert.equal(meta.meta.active, 1)
    await client.release(leaseB.token_id, b)
    // Give the service a moment to see c go; then a plain allocate (no wait) gets the token.
    let next: Lease | undefined
    await until(async () => {
      try {
        next = await client.allocate(a)
        return true
      } catch (err) {
        assert.ok(err instanceof TokenPoolError && err.code === 'pool_exhausted', String(err))
        return false
      }
    }, 'a plain allocate gets the token', 1500)
    assert.equal(next?.user_id, a, 'the token went to a, not to c who left')
  })

  test('cooldown with reallocate and wait: the new lease waits for a token to free', async (t) => {
    const { client } = await serve(t, backend, { poolSize: 2, onExhausted: 'reject', cooldownMaxSeconds: 600 })
    const [a, b] = [randomUUID(), randomUUID()]
    const leaseA = await client.allocate(a)
    const leaseB = await client.allocate(b)
    const moving = client.cooldown(leaseA.token_id, { userId: a, seconds: 60, reallocate: true, wait: 10 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    await client.release(leaseB.token_id, b)
    const moved = await moving
    assert.equal(moved.token.status, 'cooling')
    assert.equal(moved.lease_error, null)
    assert.deepEqual([moved.lease?.user_id, moved.lease?.token_id], [a, leaseB.token_id])

    const tooLong = await rejection(client.cooldown(leaseB.token_id, { userId: a, seconds: 5, reallocate: true, wait: 61 }))
    assert.deepEqual([tooLong.code, (tooLong.details as { field: string }).field], ['validation_failed', 'wait_seconds'])
  })
})
