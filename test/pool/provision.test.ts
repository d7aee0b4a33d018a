import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PoolError } from '../../src/domain/errors.js'
import { newId } from '../../src/domain/ids.js'
import { withDefaults } from '../../src/domain/types.js'
import { TokenPool, type PoolOptions } from '../../src/pool/pool.js'
import type { Db } from '../../src/store/db.js'
import { travel } from '../helpers/app.js'
import { describeEachBackend, testDb } from '../helpers/db.js'

const options = (poolSize: number): PoolOptions =>
  ({ defaultPool: { size: poolSize }, sweepIntervalMs: 0 })

const ids = async (pool: TokenPool) => (await pool.list()).tokens.map((t) => t.id)

describeEachBackend('a fixed pool whose ids are kept forever', (backend) => {
  test('a restart (a second start on the same database) keeps every id', async (t) => {
    const db = await testDb(t, backend)
    const first = new TokenPool(db, options(5))
    await first.start()
    const before = await ids(first)
    const second = new TokenPool(db, options(5))
    await second.start()
    assert.deepEqual(await ids(second), before)
    assert.equal(new Set(before).size, 5)
    assert.ok(before.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)))
  })

  test('a start says which of the default pool\'s stored settings its configuration changed, for every node', async (t) => {
    const db = await testDb(t, backend)
    const first = new TokenPool(db, options(5))
    assert.deepEqual(await first.start(), [], 'a new database: nothing was stored')
    const same = new TokenPool(db, options(5))
    assert.deepEqual(await same.start(), [], 'the same configuration changes nothing')
    const other = new TokenPool(db, { defaultPool: { size: 7, user_quota: 2, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
    assert.deepEqual(await other.start(), [
      { setting: 'size', from: 5, to: 7 },
      { setting: 'user_quota', from: null, to: 2 },
    ])
    // The stored settings changed under the node started first.
    assert.deepEqual([(await first.getPool('default')).size, (await first.getPool('default')).user_quota], [7, 2])
    const fractional = new TokenPool(db, { defaultPool: { size: 7, user_quota: 2, lease_ttl_seconds: 0.25 }, sweepIntervalMs: 0 })
    assert.deepEqual(await fractional.start(), [
      { setting: 'lease_ttl_seconds', from: 120, to: 0.25 },
      { setting: 'lease_max_seconds', from: 120, to: 0.25 },
    ])
    for (const pool of [first, same, other, fractional]) await pool.stop()
  })

  test('growing adds tokens; shrinking retires the newest; growing again brings the same ids back', async (t) => {
    const db = await testDb(t, backend)
    const five = new TokenPool(db, options(5))
    await five.start()
    const original = await ids(five)

    const grown = new TokenPool(db, options(7))
    await grown.start()
    const seven = await ids(grown)
    assert.deepEqual(seven.slice(0, 5), original)
    assert.equal(seven.length, 7)

    // Lease the newest token, then shrink: it stays listed until its lease ends.
    for (let i = 0; i < 7; i++) {
      const lease = await grown.allocate(newId())
      if (lease.tokenId !== seven[6]) await grown.release(lease.tokenId, lease.userId)
    }
    const shrunk = new TokenPool(db, options(3))
    await shrunk.start()
    const listed = await shrunk.list()
    assert.deepEqual(listed.tokens.map((x) => x.id), [...seven.slice(0, 3), seven[6]])
    assert.equal(listed.counts.total, 4)
    // No new lease lands on a retired token: the pool now evicts among the three.
    const lease = await shrunk.allocate(newId())
    assert.ok(seven.slice(0, 3).includes(lease.tokenId))
    await assert.rejects(shrunk.get(seven[4]!), { code: 'not_found' })
    // A retired token's history stays readable.
    assert.equal((await shrunk.history(seven[4]!, 10, undefined)).usages.length, 1)

    await travel(db, 121)
    assert.deepEqual(await ids(shrunk), seven.slice(0, 3))
    const regrown = new TokenPool(db, options(7))
    await regrown.start()
    assert.deepEqual(await ids(regrown), seven)
  })
})

describeEachBackend('a resize cut short by a failure', (backend) => {
  test('is answered 503 saying what stands, and the sweep finishes it', async (t) => {
    const db = await testDb(t, backend)
    // The database fails the step that follows the creation (a statement timeout on a
    // loaded machine, as a newcomer's trial met at 100,000 tokens).
    let failNext: string | undefined
    const failing: Db = {
      ...db,
      query: async (text, values) => {
        if (failNext !== undefined && text.includes(failNext)) {
          failNext = undefined
          throw Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' })
        }
        return await db.query(text, values)
      },
    }
    const pool = new TokenPool(failing, options(2))
    await pool.start()
    failNext = 'tp_provision_step'
    const err = await pool.createPool('seats', withDefaults({ size: 5 })).catch((e: unknown) => e)
    assert.ok(err instanceof PoolError)
    assert.equal(err.code, 'unavailable')
    assert.match(err.message, /Pool seats was created, but .* brought to 5; the service finishes that by itself/)
    assert.ok((err.retryAfterSeconds ?? 0) >= 1)
    // The creation itself made these few tokens; retire some behind the pool's back to leave
    // it short, as a failed step of a larger pool does.
    await db.query("UPDATE tokens SET retired = true WHERE pool = 'seats' AND position > (SELECT min(position) + 1 FROM tokens WHERE pool = 'seats')")
    await db.query("SELECT tp_refresh('seats', NULL)")
    assert.equal((await pool.getPool('seats')).total, 2)
    await pool.sweep()
    const seats = await pool.getPool('seats')
    assert.equal(seats.size, 5)
    assert.equal(seats.total, 5)

    // A delete whose retiring fails: the pool is gone all the same, and the answer says so.
    failNext = 'tp_pool_retire'
    const deleted = await pool.deletePool('seats', false).catch((e: unknown) => e)
    assert.ok(deleted instanceof PoolError)
    assert.equal(deleted.code, 'unavailable')
    assert.match(deleted.message, /Pool seats was deleted, but/)
    await assert.rejects(pool.getPool('seats'), { code: 'not_found' })
    // Created again under the name: the same ids, and exactly its size.
    assert.equal((await pool.createPool('seats', withDefaults({ size: 3 }))).total, 3)
  })
})
