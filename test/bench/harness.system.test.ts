import assert from 'node:assert/strict'
import { test } from 'node:test'
import { allocate, type Backend } from '../../bench/harness.js'
import { POSTGRES_URL } from '../helpers/db.js'

/**
 * The bench harness end to end, small: a real server process, autocannon in its own
 * process, a second of allocations on a pool of 5 (so eviction runs), then the overlap
 * check. It asserts correctness only, never a speed.
 */
const backends: Backend[] = POSTGRES_URL === undefined ? ['pglite'] : ['pglite', 'postgres']

for (const [i, backend] of backends.entries()) {
  test(`bench allocate case on ${backend}: no errors, no overlap, every answer committed`, { timeout: 120_000 }, async () => {
    if (backend === 'postgres') process.env.BENCH_DATABASE_URL ??= POSTGRES_URL
    const row = await allocate({
      backend, poolSize: 5, seconds: 1, warmupSeconds: 0, connections: 8, port: 4780 + i * 5, database: 'token_pool_bench_test',
    })
    assert.equal(row.errors, 0, row.detail)
    assert.ok(row.answers > 0, 'the load generator got answers')
    assert.ok(row.check?.ok, row.check?.text)
  })
}
