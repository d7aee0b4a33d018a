import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { test, type TestContext } from 'node:test'
import { describeEachBackend, describeMultiConnection, postgresUrlFor, testDb, type Backend } from '../helpers/db.js'
import { postJson, startServer, type Server } from '../helpers/server.js'
import { until } from '../helpers/until.js'
import { tempDir } from '../helpers/dirs.js'

const ENV = { POOL_SIZE: '1', ON_EXHAUSTED: 'reject', LEASE_TTL_SECONDS: '60' }

async function databaseUrl (t: TestContext, backend: Backend): Promise<string> {
  if (backend === 'postgres') {
    const db = await testDb(t, 'postgres')
    const [row] = await db.query<{ schema: string }>('SELECT current_schema() AS schema')
    return postgresUrlFor(row!.schema)
  }
  const dir = tempDir(t, 'token-pool-')
  return pathToFileURL(dir).toString()
}

async function node (t: TestContext, url: string): Promise<Server> {
  const server = await startServer({ ...ENV, DATABASE_URL: url })
  t.after(() => { server.child.kill('SIGKILL') })
  return server
}

async function waiting (server: Server): Promise<number> {
  return ((await (await fetch(`${server.url}/api/pools/default`)).json()) as any).data.waiting
}

/** Joins the queue through `server` and waits until the queue has grown to `expected`. */
async function queueUp (server: Server, other: Server, expected: number): Promise<{ user: string, answer: Promise<{ status: number, body: any }> }> {
  const user = randomUUID()
  const answer = postJson(`${server.url}/api/tokens/allocate`, { user_id: user, wait_seconds: 30 })
  await until(async () => await waiting(other) === expected, `waiter ${expected} is queued`, 1000)
  return { user, answer }
}

describeMultiConnection('waiting across two server processes on one PostgreSQL', () => {
  test('first come, first served, whichever node each waiter is on', async (t) => {
    const url = await databaseUrl(t, 'postgres')
    const [a, b] = [await node(t, url), await node(t, url)]
    let holder = (await postJson(`${a.url}/api/tokens/allocate`, { user_id: randomUUID() })).body.data
    const nodes = [b, a, b, a, b]
    const waiters = []
    for (const [i, n] of nodes.entries()) waiters.push(await queueUp(n, n === a ? b : a, i + 1))
    const served: string[] = []
    for (const [i, w] of waiters.entries()) {
      // Freed one at a time, through either node.
      const via = i % 2 === 0 ? a : b
      const released = await postJson(`${via.url}/api/tokens/${holder.token_id}/release`, { user_id: holder.user_id })
      assert.equal(released.status, 200)
      const res = await w.answer
      assert.equal(res.status, 200)
      holder = res.body.data
      served.push(holder.user_id)
    }
    assert.deepEqual(served, waiters.map((w) => w.user))
  })

  test('a node killed with waiters blocks the queue at most until its rows lapse (5 s)', async (t) => {
    const url = await databaseUrl(t, 'postgres')
    const [a, b] = [await node(t, url), await node(t, url)]
    const holder = (await postJson(`${a.url}/api/tokens/allocate`, { user_id: randomUUID() })).body.data
    const first = await queueUp(a, b, 1)
    first.answer.catch(() => {})
    const second = await queueUp(b, a, 2)
    const killedAt = Date.now()
    a.child.kill('SIGKILL')
    await a.exited
    const released = await postJson(`${b.url}/api/tokens/${holder.token_id}/release`, { user_id: holder.user_id })
    const res = await second.answer
    assert.equal(res.status, 200)
    assert.equal(res.body.data.token_id, holder.token_id)
    assert.equal(released.status, 200)
    // The dead node's row lives 5 s past its last heartbeat (at most 5 s after the kill); the
    // survivor looks again within its 1 s poll, and then the token that row was granted comes
    // back. Counted from the kill (one clock: the database runs here), with 3 s for a loaded machine.
    const blockedMs = Date.parse(res.body.data.started_at) - killedAt
    assert.ok(blockedMs <= 9000, `the dead node blocked the queue for ${blockedMs} ms after it was killed`)
  })
})

describeEachBackend('waiting and a graceful shutdown', (backend) => {
  test('SIGTERM answers every waiter 503 with Retry-After before the process exits', async (t) => {
    const url = await databaseUrl(t, backend)
    const server = await node(t, url)
    await postJson(`${server.url}/api/tokens/allocate`, { user_id: randomUUID() })
    const answer = fetch(`${server.url}/api/tokens/allocate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: randomUUID(), wait_seconds: 60 }),
    })
    // A streamed waiter has no header left to carry the wait: the error event says it.
    const streamed = fetch(`${server.url}/api/tokens/allocate`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify({ user_id: randomUUID(), wait_seconds: 60 }),
    }).then(async (r) => await r.text())
    await until(async () => await waiting(server) === 2, 'both waiters are queued', 1000)
    server.child.kill('SIGTERM')
    const res = await answer
    assert.equal(res.status, 503)
    assert.equal(res.headers.get('retry-after'), '1')
    assert.equal(((await res.json()) as any).error.code, 'unavailable')
    const events = await streamed
    const error = /event: error\ndata: (.*)\n/.exec(events)
    assert.ok(error, events)
    assert.deepEqual(JSON.parse(error[1]!).error.code, 'unavailable')
    assert.deepEqual(JSON.parse(error[1]!).error.details, { retry_after_seconds: 1 })
    assert.equal(await server.exited, 0)
  })
})
