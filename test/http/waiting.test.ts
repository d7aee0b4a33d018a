import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import { build, json, type Harness } from '../helpers/app.js'
import { describeEachBackend, type Backend } from '../helpers/db.js'
import { until } from '../helpers/until.js'

/** A harness listening on a real port: streams and disconnects need a socket. */
async function served (t: TestContext, backend: Backend): Promise<Harness & { url: string }> {
  const h = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
  const url = await h.app.listen({ port: 0, host: '127.0.0.1' })
  return { ...h, url }
}

interface SseEvent { event: string, data: any }

/** Reads a text/event-stream body to its end, calling onEvent as each event arrives. */
async function readEvents (res: Response, onEvent: (e: SseEvent) => void = () => {}): Promise<SseEvent[]> {
  const events: SseEvent[] = []
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null')
      events.push({ event, data })
      onEvent({ event, data })
    }
  }
  return events
}

async function allocate (url: string, body: unknown, accept = 'application/json', signal?: AbortSignal): Promise<Response> {
  return await fetch(`${url}/api/tokens/allocate`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify(body), ...(signal === undefined ? {} : { signal }),
  })
}

async function waiting (h: Harness): Promise<number> {
  return (await h.app.inject('/api/pools/default')).json().data.waiting
}

describeEachBackend('allocate with wait_seconds over HTTP', (backend) => {
  test('a streamed wait: queued events, then the lease, then the end of the stream', async (t) => {
    const h = await served(t, backend)
    const holder = (await allocate(h.url, { user_id: randomUUID() }).then(async (r) => await r.json() as any)).data
    const user = randomUUID()
    const res = await allocate(h.url, { user_id: user, wait_seconds: 10 }, 'text/event-stream')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
    const events = await readEvents(res, (e) => {
      if (e.event === 'queued') {
        h.app.inject({ method: 'POST', url: `/api/tokens/${holder.token_id}/release`, ...json({ user_id: holder.user_id }) }).catch(() => {})
      }
    })
    // queued on entry (and again whenever its place or time changes: the release may show), then the lease.
    assert.equal(events.at(-1)!.event, 'allocated')
    assert.ok(events.slice(0, -1).every((e) => e.event === 'queued'), events.map((e) => e.event).join(', '))
    assert.deepEqual(events[0]!.data, { position: 1, waiting: 1, estimated_grant_at: holder.expires_at })
    const lease = events.at(-1)!.data
    assert.equal(lease.user_id, user)
    assert.equal(lease.token_id, holder.token_id)
    assert.equal(lease.pool, 'default')
    assert.ok(Number.isInteger(lease.lease_id) && lease.lease_id > holder.lease_id)
  })

  test('a streamed time-out ends with an error event in the error shape', async (t) => {
    const h = await served(t, backend)
    await allocate(h.url, { user_id: randomUUID() })
    const res = await allocate(h.url, { user_id: randomUUID(), wait_seconds: 0.3 }, 'text/event-stream')
    const events = await readEvents(res)
    assert.deepEqual(events.map((e) => e.event), ['queued', 'error'])
    assert.equal(events[1]!.data.error.code, 'pool_exhausted')
    assert.equal(typeof events[1]!.data.error.message, 'string')
    assert.equal(await waiting(h), 0)
  })

  test('a request that does not queue answers plain JSON, whatever its Accept', async (t) => {
    const h = await served(t, backend)
    const res = await allocate(h.url, { user_id: randomUUID(), wait_seconds: 10 }, 'text/event-stream')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    assert.ok((await res.json() as any).data.token_id)
  })

  test('without the stream header a waiter simply answers when served, or 409 with Retry-After when its time is up', async (t) => {
    const h = await served(t, backend)
    const holder = (await (await allocate(h.url, { user_id: randomUUID() })).json() as any).data
    const timedOut = await allocate(h.url, { user_id: randomUUID(), wait_seconds: 0.2 })
    assert.equal(timedOut.status, 409)
    assert.equal((await timedOut.json() as any).error.code, 'pool_exhausted')
    assert.ok(Number(timedOut.headers.get('retry-after')) >= 59)
    const pending = allocate(h.url, { user_id: randomUUID(), wait_seconds: 10 })
    await until(async () => await waiting(h) === 1, 'the waiter is queued')
    await h.app.inject({ method: 'POST', url: `/api/tokens/${holder.token_id}/release`, ...json({ user_id: holder.user_id }) })
    const res = await pending
    assert.equal(res.status, 200)
    assert.equal((await res.json() as any).data.token_id, holder.token_id)
  })

  test('a client that hangs up leaves the queue at once', async (t) => {
    const h = await served(t, backend)
    await allocate(h.url, { user_id: randomUUID() })
    const hangUp = new AbortController()
    const pending = allocate(h.url, { user_id: randomUUID(), wait_seconds: 30 }, 'application/json', hangUp.signal)
    pending.catch(() => {})
    await until(async () => await waiting(h) === 1, 'the waiter is queued')
    hangUp.abort()
    await until(async () => await waiting(h) === 0, 'the waiter left')
  })

  test('wait_seconds that is not a number, negative, or above max_wait_seconds is a 422 naming it, and changes nothing', async (t) => {
    const h = await served(t, backend)
    for (const wait of ['5', true, -1, 61, null]) {
      const res = await h.app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID(), wait_seconds: wait }) })
      assert.equal(res.statusCode, 422, `wait_seconds ${JSON.stringify(wait)}`)
      assert.equal(res.json().error.details.field, 'wait_seconds')
    }
    const stats = (await h.app.inject('/api/stats')).json().data
    assert.equal(stats.active, 0)
    assert.equal(stats.allocations_in_window, 0)
  })

  test('cooldown with reallocate waits with wait_seconds; a bad wait_seconds is a 422 that cools nothing', async (t) => {
    const h = await build(t, backend, { poolSize: 2, onExhausted: 'reject', leaseTtlSeconds: 60 })
    const a = (await h.app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })).json().data
    const b = (await h.app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })).json().data
    // Beyond max_wait_seconds (60 by default) with reallocate, without it, and by an admin: a 422 either way.
    for (const body of [{ user_id: a.user_id, reallocate: true }, { user_id: a.user_id, reallocate: false }, { user_id: a.user_id }, {}]) {
      const bad = await h.app.inject({ method: 'POST', url: `/api/tokens/${a.token_id}/cooldown`, ...json({ ...body, seconds: 30, wait_seconds: 61 }) })
      assert.equal(bad.statusCode, 422, JSON.stringify(body))
      assert.equal(bad.json().error.details.field, 'wait_seconds')
      assert.equal((await h.app.inject(`/api/tokens/${a.token_id}`)).json().data.status, 'active')
    }
    const cooling = h.app.inject({ method: 'POST', url: `/api/tokens/${a.token_id}/cooldown`, ...json({ user_id: a.user_id, seconds: 30, reallocate: true, wait_seconds: 10 }) })
    await until(async () => await waiting(h) === 1, 'the holder waits for another token')
    await h.app.inject({ method: 'POST', url: `/api/tokens/${b.token_id}/release`, ...json({ user_id: b.user_id }) })
    const done = (await cooling).json().data
    assert.equal(done.lease.token_id, b.token_id)
    assert.equal(done.lease_error, null)
  })
})
