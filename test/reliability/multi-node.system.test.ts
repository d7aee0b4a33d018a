import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { describeMultiConnection, POSTGRES_URL } from '../helpers/db.js'
import { SseClient } from './helpers/sse.js'
import { call, inParallel, lostLeases, mirrorMismatches, overlapping, sharedSchema, startNode, type Acknowledged, type Node } from './helpers/nodes.js'

const PORTS = [4320, 4321, 4322]

describeMultiConnection('three server processes on one PostgreSQL', () => {
  test('interleaved load through every node: one holder per token, nothing acknowledged lost, one lease per user, events everywhere', async (t) => {
    const shared = await sharedSchema(POSTGRES_URL!)
    t.after(shared.drop)
    // Started together on an empty schema: the migration lock lets one migrate, the others wait.
    const nodes: Node[] = await Promise.all(PORTS.map(async (port, i) =>
      await startNode(`node${i}`, port, { DATABASE_URL: shared.urlFor(`${shared.tag}-${i}`), POOL_SIZE: '12' })))
    t.after(async () => { await Promise.all(nodes.map(async (n) => { await n.kill() })) })
    const streams = await Promise.all(nodes.map(async (n) => await SseClient.open(`${n.url}/api/events`)))
    t.after(() => { for (const s of streams) s.close() })

    // Phase 1: 40 users on 12 tokens through random nodes — allocate, allocate again, release —
    // so that evictions, idempotent repeats and releases race across processes.
    const users = Array.from({ length: 40 }, () => randomUUID())
    const acked: Acknowledged[] = []
    let requests = 0
    let reads = 0
    const ops = Array.from({ length: 600 }, (_, i) => ({ user: users[i % users.length]!, kind: i % 5 }))
    await inParallel(ops, 24, async ({ user, kind }) => {
      const node = nodes[Math.floor(Math.random() * nodes.length)]!
      requests++
      if (kind === 4) {
        const mine = acked.findLast((a) => a.user_id === user)
        if (mine === undefined) return
        const res = await call(`${node.url}/api/tokens/${mine.token_id}/release`, 'POST', { user_id: user })
        assert.ok(res.status === 200 || (res.status === 409 && res.body.error.code === 'not_holder'), JSON.stringify(res.body))
        return
      }
      const res = await call(`${node.url}/api/tokens/allocate`, 'POST', { user_id: user })
      assert.equal(res.status, 200, JSON.stringify(res.body))
      acked.push(res.body.data)
      // A read on another node, begun after the answer, sees this lease or a later one
      // (reads come from each node's memory, caught up with the log first).
      const other = nodes[(nodes.indexOf(node) + 1) % nodes.length]!
      const seen = await call(`${other.url}/api/tokens/${res.body.data.token_id}`, 'GET')
      assert.equal(seen.status, 200)
      const holding = seen.body.data.active_usage?.lease_id ?? 0
      reads++
      const stale = `node ${nodes.indexOf(other)} read lease ${holding} after lease ${res.body.data.lease_id} was acknowledged`
      // An older lease on the token is stale; none is right only if this one ended meanwhile.
      assert.ok(holding === 0 || holding >= res.body.data.lease_id, stale)
      if (holding === 0) {
        const [row] = await shared.db.query<{ ended: boolean }>('SELECT released_at IS NOT NULL AS ended FROM usages WHERE id = $1', [res.body.data.lease_id])
        assert.ok(row?.ended, stale)
      }
    })

    assert.deepEqual(await overlapping(shared.db), [], 'no token had two holders')
    assert.deepEqual(await lostLeases(shared.db, acked), [], 'every acknowledged lease is in the history as answered')
    assert.deepEqual(await mirrorMismatches(shared.db), [], 'every token agrees with its usage')
    const distinct = [...new Map(acked.map((a) => [a.lease_id, a])).values()]
    // Every node's stream carries every lease granted by any node.
    for (const s of streams) {
      for (const lease of distinct) {
        await s.waitFor((e) => e.event === 'allocated' && JSON.parse(e.data).lease_id === lease.lease_id, 15_000)
      }
      const ids = s.events.map((e) => e.id)
      assert.equal(new Set(ids).size, ids.length, 'no event is sent twice')
    }
    // Lease ids are fencing tokens: on each token they grow with time.
    const regressions = await shared.db.query(`
      SELECT 1 FROM usages a JOIN usages b ON a.token_id = b.token_id AND a.id < b.id AND b.started_at < a.started_at`)
    assert.deepEqual(regressions, [])

    // Phase 2: with room for everyone, a user gets the same lease from any node, even when asking all at once.
    await call(`${nodes[0]!.url}/api/tokens/clear`, 'POST')
    const few = users.slice(0, 10)
    await inParallel(few, 10, async (user) => {
      const answers = await Promise.all(nodes.map(async (n) => await call(`${n.url}/api/tokens/allocate`, 'POST', { user_id: user })))
      for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body))
      const leaseIds = new Set(answers.map((a) => a.body.data.lease_id))
      assert.equal(leaseIds.size, 1, `one lease for ${user} whichever node answered`)
      requests += answers.length
    })
    assert.deepEqual(await overlapping(shared.db), [])

    // An allocation on node 0 reaches node 1's and node 2's streams (generous bound: never a speed test).
    const fresh = await call(`${nodes[0]!.url}/api/tokens/allocate`, 'POST', { user_id: randomUUID() })
    assert.equal(fresh.status, 200)
    for (const s of streams.slice(1)) {
      const e = await s.waitFor((e) => e.event === 'allocated' && JSON.parse(e.data).lease_id === fresh.body.data.lease_id, 15_000)
      assert.deepEqual(JSON.parse(e.data), fresh.body.data)
    }
    t.diagnostic(`${requests} requests over ${nodes.length} nodes; ${distinct.length} leases acknowledged; 0 overlaps; 0 lost; ${reads} reads on another node, none stale`)
  })
})
