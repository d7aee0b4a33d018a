import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import type { Lease } from '../../src/domain/types.js'
import type { TokenPool } from '../../src/pool/pool.js'
import type { Db } from '../../src/store/db.js'
import { build } from '../helpers/app.js'
import { describeMultiConnection, heldSession } from '../helpers/db.js'
import { until } from '../helpers/until.js'

// Picks skip locked tokens (one another batch is granting is not free). Bookkeeping that
// locks tokens which stay free (forgetting old counts, a label) must never make a batch
// see fewer free tokens than there are: it takes the pool's turn, and the batch waits.
describeMultiConnection('bookkeeping that locks free tokens, while a batch picks', () => {
  // The batch waits for this pool's turn (the advisory lock of migration 0010), in this database.
  const waitsForTurn = async (db: Awaited<ReturnType<typeof build>>['db']) => {
    await until(async () => (await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks l, (SELECT hashtextextended('turns default', 7412) AS key) k
        WHERE NOT l.granted AND l.locktype = 'advisory'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.objsubid = 1 AND l.classid::bigint = (k.key >> 32) & 4294967295 AND l.objid::bigint = k.key & 4294967295`))[0]!.n > 0,
    'the batch waits for its turn')
  }

  /** Runs `sql` in a transaction kept open until `end()` commits it. */
  async function holdOpen<R> (db: Db, sql: string, params: unknown[]): Promise<{ rows: R[], end: () => Promise<void> }> {
    const lock = heldSession(db)
    const s = await lock.s
    await s.query('BEGIN')
    const rows = await s.query<R>(sql, params)
    return { rows, end: async () => { await s.query('COMMIT'); await lock.end() } }
  }

  /** The pool's next allocation, for a new user: the lease or the refusal's code, and whether it has come. */
  function nextLease (pool: TokenPool): { answer: Promise<Lease | string>, settled: () => boolean } {
    let settled = false
    const answer = pool.allocate(newId()).then((l) => l, (err: { code?: string }) => String(err.code)).finally(() => { settled = true })
    return { answer, settled: () => settled }
  }

  for (const policy of ['reject', 'evict_oldest'] as const) {
    test(`forgetting old counts: the batch waits and takes a free token (${policy}: no 409, no eviction)`, async (t) => {
      const { pool, db } = await build(t, 'postgres', { poolSize: 2, onExhausted: policy, leaseMaxSeconds: 3600 })
      const holder = await pool.allocate(newId())
      // Every token's count belongs to an older window: the sweep's forgetting will lock them.
      await db.query("UPDATE tokens SET counted_window = now() - interval '10 days', usage_count = 5 WHERE pool = 'default' AND id <> $1", [holder.tokenId])
      const held = await holdOpen<{ n: number }>(db, "SELECT tp_forget_old_counts('default', 100) AS n", [])
      assert.equal(held.rows[0]!.n, 1)
      const next = nextLease(pool)
      await waitsForTurn(db)
      assert.equal(next.settled(), false, 'the batch waits for the forgetting to end')
      await held.end()
      const lease = await next.answer
      assert.equal(typeof lease, 'object', `a token was free: ${String(lease)}`)
      assert.notEqual((lease as Lease).tokenId, holder.tokenId)
      assert.equal((lease as Lease).evictedUserId, null)
    })
  }

  test('a label of a free token: the batch waits and takes it', async (t) => {
    const { pool, db } = await build(t, 'postgres', { poolSize: 2, onExhausted: 'reject', leaseMaxSeconds: 3600 })
    const holder = await pool.allocate(newId())
    const [free] = await db.query<{ id: string }>("SELECT id FROM tokens WHERE pool = 'default' AND id <> $1", [holder.tokenId])
    const held = await holdOpen(db, 'SELECT * FROM tp_label($1::uuid, $2)', [free!.id, 'key #2'])
    const next = nextLease(pool)
    await waitsForTurn(db)
    assert.equal(next.settled(), false, 'the batch waits for the label')
    await held.end()
    assert.equal((await next.answer as Lease).tokenId, free!.id)
  })

  test('a release or renewal of a free token (by anyone) does not lock it: a batch takes it meanwhile', async (t) => {
    const { pool, db } = await build(t, 'postgres', { poolSize: 2, onExhausted: 'reject', leaseMaxSeconds: 3600 })
    const holder = await pool.allocate(newId())
    const [free] = await db.query<{ id: string }>("SELECT id FROM tokens WHERE pool = 'default' AND id <> $1", [holder.tokenId])
    for (const fn of ['tp_release_many', 'tp_renew_many']) {
      const held = await holdOpen<{ outcome: string }>(db, `SELECT * FROM ${fn}($1::uuid[], $2::uuid[])`, [[free!.id], [newId()]])
      assert.equal(held.rows[0]?.outcome, 'not_holder')
      const lease = await nextLease(pool).answer
      await held.end()
      assert.equal((lease as Partial<Lease>).tokenId, free!.id, `${fn}: ${String(lease)}`)
      await pool.release((lease as Lease).tokenId, (lease as Lease).userId)
    }
  })
})
