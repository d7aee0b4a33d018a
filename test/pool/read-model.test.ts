import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { TokenPool } from '../../src/pool/pool.js'
import { describeEachBackend, testDb } from '../helpers/db.js'

// Reads are served from each node's read model. A read on one node right after a change
// acknowledged by the other must see it: no sleep, no poll, no retry.

describeEachBackend('reads from the read model', (backend) => {
  async function twoNodes (t: import('node:test').TestContext, size = 3) {
    const db = await testDb(t, backend)
    const settings = { defaultPool: { size, lease_ttl_seconds: 60, lease_max_seconds: 600, on_exhausted: 'reject' as const }, sweepIntervalMs: 0 }
    const a = new TokenPool(db, settings)
    const b = new TokenPool(db, settings)
    await a.start()
    await b.start()
    t.after(async () => { await a.stop(); await b.stop() })
    return { a, b, db }
  }

  test('a change acknowledged on one node is seen by the next read on the other', async (t) => {
    const { a, b } = await twoNodes(t)
    const user = newId()
    const lease = await a.allocate(user)
    const seen = await b.get(lease.tokenId)
    assert.equal(seen.status, 'active')
    assert.equal(seen.activeUsage?.leaseId, lease.leaseId)
    assert.equal(seen.activeUsage?.renewableUntil?.getTime(), lease.renewableUntil.getTime())
    assert.equal((await b.stats()).active, 1)
    assert.equal((await b.stats()).allocationsInWindow, 1)

    const renewed = await a.renew(lease.tokenId, user)
    assert.equal((await b.get(lease.tokenId)).activeUsage?.expiresAt.getTime(), renewed.expiresAt.getTime())

    await a.release(lease.tokenId, user)
    assert.equal((await b.get(lease.tokenId)).status, 'available')
    assert.equal((await b.head('default')).available, 3)

    await a.label(lease.tokenId, 'key #1')
    assert.equal((await b.get(lease.tokenId)).label, 'key #1')

    await a.disable(lease.tokenId, 'revoked')
    const disabled = await b.get(lease.tokenId)
    assert.deepEqual([disabled.status, disabled.disabledReason], ['disabled', 'revoked'])
    await a.enable(lease.tokenId)
    assert.equal((await b.get(lease.tokenId)).status, 'available')

    // Both nodes allocate at once: each sees both leases at once.
    await Promise.all([a.allocate(newId()), b.allocate(newId())])
    assert.equal((await a.stats()).active, 2)
    assert.equal((await b.stats()).active, 2)
    assert.equal((await b.stats()).allocationsInWindow, 3)
  })

  test('reads answered after one catch-up share one stats answer; the next write makes a new one', async (t) => {
    const { a, b } = await twoNodes(t)
    // The first read starts a catch-up; the next three come while it runs and share the next one.
    const [, s1, s2, s3] = await Promise.all([b.stats(), b.stats(), b.stats(), b.stats('default', 1)])
    assert.equal(s1, s2, 'one object for one catch-up and one query')
    assert.notEqual(s1, s3, 'another least_used_limit is another answer')
    assert.ok(Object.isFrozen(s1))
    await a.allocate(newId())
    const after = await b.stats()
    assert.notEqual(after, s1)
    assert.deepEqual([s1.active, after.active], [0, 1])
  })

  test('pools made, resized and deleted on one node are so on the other at its next read', async (t) => {
    const { a, b } = await twoNodes(t)
    await a.createPool('gpus', { size: 2 })
    assert.equal((await b.head('gpus')).total, 2)
    await a.updatePool('gpus', { size: 5 })
    assert.equal((await b.list('gpus')).tokens.length, 5)
    const lease = await b.allocate(newId(), 'gpus')
    assert.equal((await a.get(lease.tokenId, 'gpus')).status, 'active')
    const before = (await a.list('gpus')).tokens.map((x) => x.id)
    await a.updatePool('gpus', { size: 1 })
    // Shrunk to the oldest token; a retired one stays visible while its lease runs (rule 1).
    const kept = before[0] === lease.tokenId ? 1 : 2
    assert.equal((await b.head('gpus')).total, kept)
    assert.equal((await b.get(lease.tokenId)).status, 'active')
    await a.deletePool('gpus', true)
    await assert.rejects(b.head('gpus'), { code: 'not_found' })
    await assert.rejects(b.get(lease.tokenId), { code: 'not_found' })
  })

  test('a lease and a cooldown end on reads exactly at their deadlines, with no sweep', async (t) => {
    const { a, b } = await twoNodes(t, 2)
    const [first, second] = (await a.list()).tokens
    // Long enough for node b's first reads (which build its model) on a loaded machine.
    const { token } = await a.cooldown(first!.id, null, 2)
    assert.equal((await b.get(first!.id)).status, 'cooling')
    assert.equal((await b.stats()).cooling, 1)
    // The database's clock is this machine's: a read begun before the end says cooling,
    // a read finished after it says available (a few ms for the two clocks' reading).
    const end = token.coolingUntil!.getTime()
    for (;;) {
      const began = Date.now()
      const seen = await b.get(first!.id)
      if (seen.status === 'available') {
        assert.ok(Date.now() >= end - 5, `available ${end - Date.now()} ms before the cooldown's end`)
        assert.equal(seen.coolingUntil, null)
        assert.equal((await b.head('default')).cooling, 0)
        break
      }
      assert.ok(began <= end + 5, `still cooling ${began - end} ms after its end`)
      assert.equal(seen.coolingUntil?.getTime(), end)
    }
    const holder = newId()
    const lease = await a.allocate(holder)
    assert.ok([first!.id, second!.id].includes(lease.tokenId))
    assert.equal((await b.stats()).active, 1)
  })

  test('a database that crashed is read anew: after recovery it may give out transaction ids again', async (t) => {
    const db = await testDb(t, backend)
    const node = new TokenPool(db, { defaultPool: { size: 2 }, sweepIntervalMs: 0 })
    await node.start()
    t.after(async () => { await node.stop() })
    const [token] = (await node.list()).tokens

    // A change whose event the log no longer gives this node (as one committed under a
    // reused transaction id, below its cursor): only reading everything again finds it.
    await db.query('UPDATE tokens SET label = $1 WHERE id = $2', ['found again', token!.id])
    assert.equal((await node.get(token!.id)).label, null, 'no event: the copy does not know')
    // What crash recovery does to an unlogged table, and only a crash does.
    await db.query('TRUNCATE read_model_marks')
    assert.equal((await node.get(token!.id)).label, 'found again', 'the crash made the node read everything again')
    assert.equal((await db.query('SELECT * FROM read_model_marks')).length, 1, 'and mark itself again')
  })
})
