import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TokenPool } from '../../src/pool/pool.js'
import { describeEachBackend, testDb } from '../helpers/db.js'

// The sweep runs every second on every node: what it costs when there is nothing to do is
// paid all the time. Counted in calls, not timed.
describeEachBackend('the sweep with nothing to forget', (backend) => {
  test('reads the pool\'s window once, whatever the pool\'s size (an index probe, not a call per token)', async (t) => {
    const db = await testDb(t, backend)
    await new TokenPool(db, { defaultPool: { size: 300 }, sweepIntervalMs: 0 }).start()
    const calls = await db.withSession(async (s) => {
      await s.query('BEGIN')
      await s.query("SET LOCAL track_functions = 'pl'")
      await s.query("SELECT tp_forget_old_counts('default', 500)")
      const [row] = await s.query<{ n: number }>("SELECT pg_stat_get_xact_function_calls('tp_window(text)'::regprocedure)::int AS n")
      await s.query('ROLLBACK')
      return row!.n
    })
    assert.equal(calls, 1)
  })
})
