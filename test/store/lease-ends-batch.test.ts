import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newId, type Id } from '../../src/domain/ids.js'
import type { Db } from '../../src/store/db.js'
import { build } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'

type Pair = [Id, Id]

/**
 * What a statement answers on the database as it is, undone afterwards. The batched
 * functions (set-based, migrations 0017-0018) answer every pair at one instant; each must
 * answer what the per-pair function they replaced (still there: a waiter's lease goes back
 * through tp_release) answers for that pair alone on the same state.
 */
async function undone<R> (db: Db, sql: string, params: unknown[]): Promise<R[]> {
  return await db.withSession(async (s) => {
    await s.query('BEGIN')
    try {
      return await s.query<R>(sql, params)
    } finally {
      await s.query('ROLLBACK')
    }
  })
}

const alone = (fn: 'tp_release' | 'tp_renew') => `SELECT $1::uuid AS token_id, $2::uuid AS user_id, o.* FROM ${fn}($1, $2) o`

// The columns that don't depend on the clock, and whether each time is there.
function shape (rows: Array<Record<string, unknown>>): unknown[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Date ? 'a time' : v])))
}

describeEachBackend('batched releases and renewals answer as the per-pair functions did', (backend) => {
  test('holder and another user on one token, an unknown token, a retired token with and without a lease, a deleted pool, a lease at its cap', async (t) => {
    const { pool, db } = await build(t, backend, { poolSize: 3, leaseMaxSeconds: 3600 })
    const [a, b, c, d, e] = [newId(), newId(), newId(), newId(), newId()]
    const held = await pool.allocate(a)
    const retiredHeld = await pool.allocate(b)
    const free = (await pool.list()).tokens.find((x) => x.status === 'available')!
    // Shrink to the one token a holds: the others retire (b's keeps its lease until it ends).
    await db.query('UPDATE tokens SET retired = true WHERE pool = \'default\' AND id <> $1', [held.tokenId])
    await pool.createPool('gone', { size: 1, lease_ttl_seconds: 60 })
    const inGone = await pool.allocate(c, 'gone')
    await db.query('UPDATE pools SET deleted = true WHERE name = \'gone\'')
    await pool.createPool('capped', { size: 1, lease_ttl_seconds: 60, lease_max_seconds: 60 })
    const capped = await pool.allocate(d, 'capped')

    const asked: Pair[] = [
      [held.tokenId, a], [held.tokenId, e], // the holder and someone else
      [newId(), a], // no such token
      [retiredHeld.tokenId, b], [retiredHeld.tokenId, e], // retired, its lease running
      [free.id, e], // retired, no lease
      [inGone.tokenId, c], // its pool deleted
      [capped.tokenId, d], // renewal at its cap
    ]
    const pairs = asked.sort(([t1, u1], [t2, u2]) => t1 === t2 ? u1.localeCompare(u2) : t1.localeCompare(t2)) // the batch's order
    const args = [pairs.map((p) => p[0]), pairs.map((p) => p[1])]
    for (const [many, one] of [['tp_release_many', 'tp_release'], ['tp_renew_many', 'tp_renew']] as const) {
      const batched = shape(await undone(db, `SELECT * FROM ${many}($1::uuid[], $2::uuid[])`, args))
      const single: unknown[] = []
      for (const pair of pairs) single.push(...shape(await undone(db, alone(one), pair)))
      assert.deepEqual(batched, single, many)
      assert.ok(batched.some((r) => (r as { outcome: string }).outcome === 'not_found'))
      assert.ok(batched.some((r) => (r as { outcome: string }).outcome === 'not_holder'))
    }
  })
})
