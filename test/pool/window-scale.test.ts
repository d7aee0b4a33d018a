import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { TokenPool } from '../../src/pool/pool.js'
import { openPostgres } from '../../src/store/pg-db.js'
import { describeMultiConnection, POSTGRES_URL, testDb } from '../helpers/db.js'

const SIZE = 1_000_000

/**
 * A window's end must cost nothing however large the pool (rule 5): counts of an ended
 * window read as 0 without a write per token. Regression: every token counted in the
 * window that just ended, then the first allocation of the new window, under the 1 s
 * statement timeout of a strict deployment.
 */
describeMultiConnection('the end of a usage window at 1,000,000 tokens', () => {
  test('a new pool, every token counted in a window that has ended, and the counts forgotten: allocations and page reads each fit a 1 s statement timeout', { timeout: 300_000 }, async (t) => {
    const setup = await testDb(t, 'postgres')
    const [{ schema }] = await setup.query<{ schema: string }>('SELECT current_schema() AS schema') as [{ schema: string }]
    const settings = { size: SIZE, lease_ttl_seconds: 120, usage_window_hours: 24 }

    // Provisioned with the default timeout: 50,000 tokens a statement.
    const started = Date.now()
    const provisioner = new TokenPool(setup, { defaultPool: settings, sweepIntervalMs: 0 })
    await provisioner.start()
    t.diagnostic(`provisioned ${SIZE.toLocaleString('en')} tokens in ${((Date.now() - started) / 1000).toFixed(1)} s`)

    const strict = openPostgres(POSTGRES_URL!, { schema, max: 4, statementTimeoutMs: 1000 })
    t.after(async () => { await strict.close() })
    // No start(): the schema and the pool are there; this is the serving side.
    const pool = new TokenPool(strict, { defaultPool: settings, sweepIntervalMs: 0 })
    const timed = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
      const at = Date.now()
      const out = await op()
      t.diagnostic(`${what}: ${Date.now() - at} ms`)
      return out
    }
    // A new pool: every count 0 (counted_window NULL).
    const fresh = await timed('50 allocations on a new pool', async () => await Promise.all(Array.from({ length: 50 }, async () => await pool.allocate(newId()))))
    assert.equal(new Set(fresh.map((l) => l.tokenId)).size, 50)

    // Every token used once in the current window (one UPDATE), then the clock past that
    // window's end: as travel() would, the stored window start and counts move back 25 h.
    const slow = openPostgres(POSTGRES_URL!, { schema, max: 1, statementTimeoutMs: 300_000 })
    t.after(async () => { await slow.close() })
    await slow.query('UPDATE pools SET window_started_at = window_started_at - interval \'25 hours\' WHERE name = \'default\'')
    // In short steps: a long transaction would hold back every event stream on this
    // PostgreSQL (RELIABILITY.md, known limits), those of the test file running alongside included.
    const inSteps = async (sql: string) => {
      while ((await slow.query<{ n: number }>(`WITH done AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM done`))[0]!.n > 0);
    }
    await inSteps(`UPDATE tokens SET counted_window = p.window_started_at, usage_count = 1,
                          lease_id = NULL, lease_user_id = NULL, lease_started_at = NULL, lease_expires_at = NULL
                     FROM pools p
                    WHERE tokens.id IN (SELECT t.id FROM tokens t, pools q WHERE q.name = 'default' AND t.pool = 'default'
                                           AND t.counted_window IS DISTINCT FROM q.window_started_at LIMIT 25000)
                      AND p.name = 'default'`)
    await slow.query('UPDATE usages SET released_at = started_at, release_reason = \'cleared\' WHERE released_at IS NULL')
    await slow.query('VACUUM ANALYZE tokens')
    // Rows changed behind the service's back: its read model reads the pool again.
    await slow.query('SELECT tp_refresh(\'default\', NULL)')

    const lease = await timed('first allocate of the new window', async () => await pool.allocate(newId()))
    assert.equal(lease.isNew, true)
    const token = await timed('get (builds the read model)', async () => await pool.get(lease.tokenId))
    assert.equal(token.usageCount, 1, 'its count restarted in the new window')
    const more = await timed('100 allocations at once', async () => await Promise.all(Array.from({ length: 100 }, async () => await pool.allocate(newId()))))
    assert.equal(new Set(more.map((l) => l.tokenId)).size, 100)

    const page = await timed('a page of the list', async () => await pool.list('default', { limit: 100 }))
    assert.equal(page.tokens.length, 100)
    assert.equal(page.counts.total, SIZE)
    assert.equal(page.counts.active, 101)
    assert.ok(page.tokens.every((x) => x.usageCount === (x.status === 'active' ? 1 : 0)))
    await timed('pools', async () => await pool.listPools())
    // Stats read every token: measured with the default 5 s timeout.
    const stats = await timed('stats (5 s timeout)', async () => await provisioner.stats('default', 10))
    assert.equal(stats.total, SIZE)
    assert.equal(stats.active, 101)
    assert.equal(stats.allocationsInWindow, 101)
    assert.equal(stats.leastUsedCount, SIZE - 101)

    // The counts as the sweep leaves them once it has forgotten the old window (count 0,
    // counted_window NULL), in one UPDATE: the pick reads them in index order too.
    await inSteps(`UPDATE tokens SET counted_window = NULL, usage_count = 0
                    WHERE tokens.id IN (SELECT t.id FROM tokens t, pools p WHERE p.name = 'default' AND t.pool = 'default'
                                           AND t.counted_window < p.window_started_at LIMIT 25000)`)
    const after = await timed('100 allocations once the old counts are forgotten', async () =>
      await Promise.all(Array.from({ length: 100 }, async () => await pool.allocate(newId()))))
    assert.equal(new Set(after.map((l) => l.tokenId)).size, 100)
  })
})
