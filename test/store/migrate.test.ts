import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import { newId, type Id } from '../../src/domain/ids.js'
import { buildApp } from '../../src/http/app.js'
import type { Db } from '../../src/store/db.js'
import { migrate } from '../../src/store/migrate.js'
import { openPostgres } from '../../src/store/pg-db.js'
import { pgliteDb } from '../../src/store/pglite-db.js'
import { TokenPool } from '../../src/pool/pool.js'
import { describeEachBackend, describeMultiConnection, freshPglite, POSTGRES_URL, testDb, type Backend } from '../helpers/db.js'

const MIGRATIONS = readdirSync(new URL('../../migrations/', import.meta.url)).filter((f) => f.endsWith('.sql'))

/** A database with nothing in it: its own PGlite, or a new schema on the test PostgreSQL. */
async function emptyDb (t: TestContext, backend: Backend): Promise<Db> {
  if (backend === 'pglite') {
    const pg = await freshPglite()
    const db = pgliteDb(pg, async () => { await pg.close() })
    t.after(async () => { await db.close() })
    return db
  }
  const schema = 't_' + randomBytes(6).toString('hex')
  const admin = openPostgres(POSTGRES_URL!, { max: 1 })
  await admin.query(`CREATE SCHEMA ${schema}`)
  const db = openPostgres(POSTGRES_URL!, { schema, max: 5 })
  t.after(async () => {
    await db.close()
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.close()
  })
  return db
}

const version = async (db: Db) =>
  (await db.query<{ v: number }>('SELECT max(version)::int AS v FROM schemaversion'))[0]?.v

describeEachBackend('migrations', (backend) => {
  test('applying them again changes nothing', async (t) => {
    const db = await testDb(t, backend)
    assert.equal(await migrate(db), 0)
    const rows = await db.query<{ version: number }>('SELECT version FROM schemaversion WHERE version > 0 ORDER BY version')
    assert.equal(rows.length, MIGRATIONS.length)
  })

  test('a v0.1 database (migrations 0001–0002) with a lease in it upgrades in place: same tokens, same lease, same history', async (t) => {
    const db = await emptyDb(t, backend)
    assert.equal(await migrate(db, 2), 2)
    assert.equal(await version(db), 2)

    // The v0.1 way: provision, then a batch allocation, one lease released and one active.
    const [provisioned] = await db.query<{ live: number }>('SELECT tp_provision(5, 50000) AS live')
    assert.equal(provisioned?.live, 5)
    const ids = (await db.query<{ id: string }>('SELECT id FROM tokens ORDER BY position')).map((r) => r.id)
    const [{ window_started_at: windowStart }] = await db.query<{ window_started_at: Date }>('SELECT window_started_at FROM pool_state') as [{ window_started_at: Date }]
    const v01Allocate = async (user: string) => {
      const [row] = await db.query<{ outcome: string, lease_id: number, token_id: Id, started_at: Date, expires_at: Date }>(
        'SELECT * FROM tp_allocate(ARRAY[$1]::uuid[], make_interval(secs => 120), make_interval(secs => 86400), true)', [user])
      assert.equal(row?.outcome, 'new')
      return row!
    }
    const gone = newId()
    const done = await v01Allocate(gone)
    const [released] = await db.query<{ outcome: string }>('SELECT * FROM tp_release($1::uuid, $2::uuid)', [done.token_id, gone])
    assert.equal(released?.outcome, 'released')
    const user = newId()
    const v01 = await v01Allocate(user)

    // A v0.2 server starts on it and migrates it to the latest.
    const pool = new TokenPool(db, { defaultPool: { size: 5, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
    await pool.start()
    t.after(async () => { await pool.stop() })
    assert.equal(await version(db), MIGRATIONS.length)

    const pools = await pool.listPools()
    assert.deepEqual(pools.map((p) => [p.name, p.size, p.total, p.active, p.available, p.cooling, p.disabled]), [['default', 5, 5, 1, 4, 0, 0]])
    const list = await pool.list()
    assert.deepEqual(list.tokens.map((x) => x.id), ids, 'the same token ids, in the same order')
    assert.ok(list.tokens.every((x) => x.pool === 'default'))
    assert.deepEqual([list.counts.total, list.counts.active, list.counts.available], [5, 1, 4])
    assert.equal(list.counts.windowStartedAt.getTime(), windowStart.getTime(), 'the usage window carries over')

    const token = await pool.get(v01.token_id)
    assert.equal(token.status, 'active')
    assert.deepEqual(token.activeUsage, {
      leaseId: v01.lease_id, userId: user, startedAt: v01.started_at, expiresAt: v01.expires_at, renewableUntil: v01.expires_at,
    })
    const history = await pool.history(v01.token_id, 50, undefined)
    assert.equal(history.usages[0]?.leaseId, v01.lease_id)
    assert.equal(history.usages[0]?.releasedAt, null)
    const old = (await pool.history(done.token_id, 50, undefined)).usages.find((u) => u.leaseId === done.lease_id)
    assert.equal(old?.releaseReason, 'released')
    const stats = await pool.stats()
    assert.equal(stats.allocationsInWindow, 2)

    // Allocate again: the v0.1 lease itself, unchanged.
    const again = await pool.allocate(user)
    assert.deepEqual(
      [again.pool, again.tokenId, again.leaseId, again.startedAt.getTime(), again.expiresAt.getTime(), again.isNew],
      ['default', v01.token_id, v01.lease_id, v01.started_at.getTime(), v01.expires_at.getTime(), false])
    // Over HTTP, as any v0.2 lease.
    const app = await buildApp({ pool })
    t.after(async () => { await app.close() })
    const res = await app.inject(`/api/tokens/${v01.token_id}`)
    assert.equal(res.statusCode, 200)
    assert.equal(res.json().data.active_usage.lease_id, v01.lease_id)
    assert.equal(res.json().data.current_user_id, user)
    // New leases carry on the lease id sequence, and the holder can release the old one.
    const next = await pool.allocate(newId())
    assert.ok(next.leaseId > v01.lease_id)
    const ended = await pool.release(v01.token_id, user)
    assert.equal(ended.leaseId, v01.lease_id)
    assert.equal(ended.pool, 'default')
  })
})
describeMultiConnection('nodes starting at once on an empty database', () => {
  test('three nodes migrate and provision together without breaking', async (t) => {
    const schema = 't_' + randomBytes(6).toString('hex')
    const admin = openPostgres(POSTGRES_URL!, { max: 1 })
    await admin.query(`CREATE SCHEMA ${schema}`)
    t.after(async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`)
      await admin.close()
    })
    const pools = [1, 2, 3].map(() => {
      const db = openPostgres(POSTGRES_URL!, { schema, max: 2 })
      t.after(async () => { await db.close() })
      return new TokenPool(db, { defaultPool: { size: 25, lease_ttl_seconds: 120 }, sweepIntervalMs: 0 })
    })
    await Promise.all(pools.map(async (p) => { await p.start() }))
    const lists = await Promise.all(pools.map(async (p) => (await p.list()).tokens.map((x) => x.id)))
    assert.equal(lists[0]?.length, 25)
    assert.deepEqual(lists[1], lists[0])
    assert.deepEqual(lists[2], lists[0])
  })
})
