import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { newId } from '../../src/domain/ids.js'
import { build } from '../helpers/app.js'
import { describeEachBackend, describeMultiConnection, POSTGRES_URL, someoneWaitsOn, testDb } from '../helpers/db.js'
import { until } from '../helpers/until.js'
import { TokenPool } from '../../src/pool/pool.js'
import { openPostgres } from '../../src/store/pg-db.js'

describeEachBackend('the SQL pick (rule 4)', (backend) => {
  test('breaks ties at random, not by creation order', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 20 })
    const order = (await pool.list()).tokens.map((x) => x.id)
    const firstPicks: number[] = []
    for (let round = 0; round < 8; round++) {
      // Every token once: counts stay equal, so every round starts from a 20-way tie.
      const leases = []
      for (let i = 0; i < 20; i++) leases.push(await pool.allocate(newId()))
      assert.equal(new Set(leases.map((l) => l.tokenId)).size, 20, 'a round takes each token once (least used first)')
      firstPicks.push(order.indexOf(leases[0]!.tokenId))
      for (const l of leases) await pool.release(l.tokenId, l.userId)
    }
    // By creation order every round would start at the same token; at random, 8 equal
    // first picks out of 20 have a chance of 20^-7.
    assert.ok(new Set(firstPicks).size > 1, `first picks ${firstPicks.join(', ')}`)
  })
})

describeMultiConnection('evict_oldest when every candidate is locked by another transaction', () => {
  test('waits, then evicts the oldest lease, never the newest', async (t) => {
    const db = await testDb(t, 'postgres')
    const pool = new TokenPool(db, { defaultPool: { size: 3, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
    await pool.start()
    t.after(async () => { await pool.stop() })
    const [first] = [await pool.allocate(newId())]
    await sleep(5)
    await pool.allocate(newId())
    await sleep(5)
    await pool.allocate(newId())
    // Another transaction holds every token row: the SKIP LOCKED picks find nothing, so the
    // allocation takes the fallback path and waits for the oldest lease's token.
    const [{ schema }] = await db.query<{ schema: string }>('SELECT current_schema() AS schema') as [{ schema: string }]
    const locker = openPostgres(POSTGRES_URL!, { schema, max: 1 })
    t.after(async () => { await locker.close() })
    const release = await locker.withSession(async (s) => {
      await s.query('BEGIN')
      await s.query('SELECT id FROM tokens FOR NO KEY UPDATE')
      const evicting = pool.allocate(newId())
      // Once the allocation waits for a row lock, let the rows go.
      await until(async () => await someoneWaitsOn(db, s), 'the allocation waits for a row lock')
      await s.query('COMMIT')
      return await evicting
    })
    assert.equal(release.evictedUserId, first!.userId)
    assert.equal(release.tokenId, first!.tokenId)
  })
})
