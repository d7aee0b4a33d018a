import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { request } from 'node:http'
import { test, type TestContext } from 'node:test'
import { describeMultiConnection, POSTGRES_URL } from '../helpers/db.js'
import { SseClient } from './helpers/sse.js'
import { DbProxy } from './helpers/proxy.js'
import { call, lostLeases, mirrorMismatches, overlapping, sharedSchema, startNode, type Acknowledged, type Answer, type Node, type SharedSchema } from './helpers/nodes.js'

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

/** Every answer is a lease or the contract's 503; anything else fails the test. */
function expectLeaseOr503 (res: Answer, acked: Acknowledged[]): void {
  if (res.status === 200) {
    acked.push(res.body.data)
    return
  }
  assert.equal(res.status, 503, JSON.stringify(res.body))
  assert.equal(res.body.error.code, 'unavailable')
  assert.equal(typeof res.body.error.message, 'string')
  assert.ok(Number(res.headers.get('retry-after')) >= 1)
}

/** Users allocating (and sometimes releasing) in a loop through the given nodes until stop() is called. */
function load (nodes: Node[], users: number, onAnswer: (res: Answer, node: Node) => void) {
  const state = { running: true }
  let requests = 0
  const ids = Array.from({ length: users }, () => randomUUID())
  const done = Promise.all(ids.map(async (user, i) => {
    while (state.running) {
      const node = nodes[(i + requests) % nodes.length]!
      requests++
      onAnswer(await call(`${node.url}/api/tokens/allocate`, 'POST', { user_id: user }, 20_000), node)
    }
  }))
  return { stop: async () => { state.running = false; await done; return requests } }
}

/** A POST on a fresh connection; `sent` resolves once the whole request is written. */
function post (url: string, body: unknown): { sent: Promise<void>, answer: Promise<Answer> } {
  let sent!: () => void
  const sentP = new Promise<void>((resolve) => { sent = resolve })
  const answer = new Promise<Answer>((resolve) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: new Headers() }) })
    })
    req.on('error', (err) => { sent(); resolve({ status: 0, body: { error: String(err) }, headers: new Headers() }) })
    req.on('finish', () => { sent() })
    req.end(JSON.stringify(body))
  })
  return { sent: sentP, answer }
}

async function eventually<T> (probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(100)
  }
}

async function schema (t: TestContext): Promise<SharedSchema> {
  const s = await sharedSchema(POSTGRES_URL!)
  t.after(s.drop)
  return s
}

async function node (t: TestContext, name: string, port: number, databaseUrl: string, env: Record<string, string> = {}): Promise<Node> {
  const n = await startNode(name, port, { DATABASE_URL: databaseUrl, POOL_SIZE: '20', ...env })
  t.after(n.kill)
  return n
}

async function allocates (n: Node): Promise<true | undefined> {
  return (await call(`${n.url}/api/tokens/allocate`, 'POST', { user_id: randomUUID() }, 5_000)).status === 200 ? true : undefined
}

describeMultiConnection('faults', () => {
  test('connections killed mid-load (pg_terminate_backend): 503 or a lease, then recovery without restart', async (t) => {
    const s = await schema(t)
    const nodes = [
      await node(t, 'a', 4330, s.urlFor(`${s.tag}-a`)),
      await node(t, 'b', 4331, s.urlFor(`${s.tag}-b`)),
    ]
    const stream = await SseClient.open(`${nodes[1]!.url}/api/events`)
    t.after(() => { stream.close() })
    const acked: Acknowledged[] = []
    let unavailable = 0
    const run = load(nodes, 30, (res) => { expectLeaseOr503(res, acked); if (res.status === 503) unavailable++ })
    await sleep(500)
    // Every connection of both nodes, the LISTEN ones included, twice over.
    for (let i = 0; i < 2; i++) {
      const killed = await s.db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1', [`${s.tag}-%`])
      assert.ok(killed.length > 0)
      await sleep(300)
    }
    await sleep(500)
    const requests = await run.stop()

    for (const n of nodes) {
      await eventually(async () => await allocates(n), 10_000, `${n.name} allocates again`)
      assert.equal((await call(`${n.url}/readyz`, 'GET')).status, 200)
    }
    // The stream of node b lost its LISTEN connection too, and still carries node a's news.
    const after = await call(`${nodes[0]!.url}/api/tokens/allocate`, 'POST', { user_id: randomUUID() })
    await stream.waitFor((e) => e.event === 'allocated' && JSON.parse(e.data).lease_id === after.body.data.lease_id, 10_000)
    assert.deepEqual(await overlapping(s.db), [])
    assert.deepEqual(await lostLeases(s.db, acked), [])
    t.diagnostic(`${requests} requests, ${unavailable} answered 503, ${acked.length} leases, 0 overlaps, 0 lost`)
  })

  test('the database goes away and comes back: 503 at once, /readyz 503, recovery by itself', async (t) => {
    const s = await schema(t)
    const pg = new URL(POSTGRES_URL!)
    const proxy = new DbProxy(4339, { host: pg.hostname, port: Number(pg.port || 5432) })
    await proxy.start()
    t.after(async () => { await proxy.close() })
    const viaProxy = new URL(s.urlFor(`${s.tag}-p`))
    viaProxy.host = `127.0.0.1:${proxy.port}`
    const n = await node(t, 'p', 4332, viaProxy.toString())
    const acked: Acknowledged[] = []
    const run = load([n], 20, (res) => { expectLeaseOr503(res, acked) })
    await sleep(400)

    await proxy.cut()
    const started = Date.now()
    const down = await call(`${n.url}/api/tokens/allocate`, 'POST', { user_id: randomUUID() }, 20_000)
    assert.equal(down.status, 503)
    assert.equal(down.body.error.code, 'unavailable')
    assert.ok(Date.now() - started < 10_000, 'answered within the connect timeout')
    assert.equal((await call(`${n.url}/readyz`, 'GET', undefined, 20_000)).status, 503)
    assert.equal((await call(`${n.url}/healthz`, 'GET')).status, 200, 'the process itself is up')
    await sleep(300)

    await proxy.restore()
    await eventually(async () => (await call(`${n.url}/readyz`, 'GET')).status === 200 ? true : undefined, 15_000, 'ready again')
    await eventually(async () => await allocates(n), 15_000, 'allocates again')
    await run.stop()
    assert.deepEqual(await overlapping(s.db), [])
    assert.deepEqual(await lostLeases(s.db, acked), [])
  })

  test('a database that stops answering: requests end in 503 within the timeouts, not a hang', async (t) => {
    const s = await schema(t)
    const pg = new URL(POSTGRES_URL!)
    const proxy = new DbProxy(4338, { host: pg.hostname, port: Number(pg.port || 5432) })
    await proxy.start()
    t.after(async () => { await proxy.close() })
    const viaProxy = new URL(s.urlFor(`${s.tag}-h`))
    viaProxy.host = `127.0.0.1:${proxy.port}`
    const n = await node(t, 'h', 4333, viaProxy.toString())
    assert.ok(await allocates(n))

    proxy.blackhole()
    // statement_timeout can't help when the server is unreachable: the client's query timeout must.
    const answers = await Promise.all(Array.from({ length: 5 }, async () =>
      await call(`${n.url}/api/tokens/allocate`, 'POST', { user_id: randomUUID() }, 30_000)))
    for (const a of answers) {
      assert.equal(a.status, 503, JSON.stringify(a.body))
      assert.equal(a.body.error.code, 'unavailable')
    }
    assert.equal((await call(`${n.url}/readyz`, 'GET', undefined, 30_000)).status, 503)

    await proxy.restore()
    await eventually(async () => await allocates(n), 15_000, 'allocates again')
  })

  test('SIGTERM: no new connections, in-flight requests finish, connections closed, exit 0', async (t) => {
    const s = await schema(t)
    const tag = `${s.tag}-t`
    const n = await node(t, 't', 4334, s.urlFor(tag))
    assert.ok(await allocates(n))
    // Hold every allocation inside the database, so that they are surely in flight at SIGTERM.
    let unlock!: () => void
    const locked = new Promise<void>((resolve) => { unlock = resolve })
    let holding!: () => void
    const held = new Promise<void>((resolve) => { holding = resolve })
    const locker = s.db.withSession(async (session) => {
      await session.query('BEGIN')
      await session.query('LOCK TABLE tokens IN EXCLUSIVE MODE')
      holding()
      await locked
      await session.query('COMMIT')
    })
    await held
    const users = Array.from({ length: 20 }, () => randomUUID())
    // Each on a connection of its own, and wholly sent before SIGTERM: surely in flight.
    const requests = users.map((user) => post(`${n.url}/api/tokens/allocate`, { user_id: user }))
    await Promise.all(requests.map(async (r) => await r.sent))
    const inFlight = requests.map(async (r) => await r.answer)
    await eventually(async () => {
      const [row] = await s.db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [tag])
      return (row?.n ?? 0) > 0 ? true : undefined
    }, 10_000, 'allocations waiting in the database')

    n.child.kill('SIGTERM')
    // Once the signal is handled (a loaded machine may take a moment), no new work.
    await eventually(async () => {
      const late = await call(`${n.url}/healthz`, 'GET', undefined, 5_000)
      return late.status === 0 || late.status === 503 ? true : undefined
    }, 10_000, 'no new work after SIGTERM')
    unlock()
    await locker

    // A request the server had taken in is answered; one still in the listen backlog when the
    // listener closed is reset by the kernel, before any work: never an error answer, never a hang.
    const answers = await Promise.all(inFlight)
    const served = answers.filter((a) => a.status === 200)
    for (const a of answers) assert.ok(a.status === 200 || a.status === 0, JSON.stringify(a.body))
    assert.ok(served.length >= 1, 'the allocations waiting in the database when SIGTERM came were finished')
    assert.equal(await n.exited, 0, n.output())
    assert.deepEqual(await lostLeases(s.db, served.map((a) => a.body.data)), [])
    const [row] = await s.db.query<{ n: number }>('SELECT count(*)::int AS n FROM usages WHERE user_id = ANY($1::uuid[])', [users])
    assert.equal(row!.n, served.length, 'nothing done for a request that was not answered')
    await eventually(async () => {
      const rows = await s.db.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [tag])
      return rows.length === 0 ? true : undefined
    }, 5_000, 'every connection closed')
  })

  test('SIGKILL under load loses nothing acknowledged; a restarted node carries on', async (t) => {
    const s = await schema(t)
    const url = s.urlFor(`${s.tag}-k`)
    const nodes = [await node(t, 'k0', 4335, url), await node(t, 'k1', 4336, url)]
    const acked: Acknowledged[] = []
    let killedAnswers = 0
    let ackedByKilled = 0
    const run = load(nodes, 30, (res, from) => {
      if (from === nodes[0]) {
        if (res.status === 0) { killedAnswers++; return }
        if (res.status === 200) ackedByKilled++
      }
      expectLeaseOr503(res, acked)
    })
    await eventually(async () => ackedByKilled > 0 ? true : undefined, 10_000, 'the node to be killed acknowledges leases')
    nodes[0]!.child.kill('SIGKILL')
    assert.equal(await nodes[0]!.exited, 'SIGKILL')
    await sleep(500)
    const requests = await run.stop()

    assert.deepEqual(await overlapping(s.db), [])
    assert.deepEqual(await lostLeases(s.db, acked), [])
    assert.ok(ackedByKilled > 0, 'the killed node had acknowledged leases')
    assert.deepEqual(await mirrorMismatches(s.db), [], 'nothing half-written')
    // Restarted on the same port, it hands a user the lease it already holds.
    const again = await node(t, 'k0b', 4335, url)
    const last = acked.at(-1)!
    const res = await call(`${again.url}/api/tokens/allocate`, 'POST', { user_id: last.user_id })
    assert.equal(res.status, 200)
    t.diagnostic(`${requests} requests, ${killedAnswers} cut by the kill, ${acked.length} acknowledged (${ackedByKilled} by the killed node), 0 lost`)
  })
})
