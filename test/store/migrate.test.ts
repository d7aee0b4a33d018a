import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { test } from 'node:test'
import { migrate } from '../../src/store/migrate.js'
import { openPostgres } from '../../src/store/pg-db.js'
import { TokenPool } from '../../src/pool/pool.js'
import { describeEachBackend, describeMultiConnection, POSTGRES_URL, testDb } from '../helpers/db.js'

const MIGRATIONS = readdirSync(new URL('../../migrations/', import.meta.url)).filter((f) => f.endsWith('.sql'))

describeEachBackend('migrations', (backend) => {
  test('applying them again changes nothing', async (t) => {
    const db = await testDb(t, backend)
    assert.equal(await migrate(db), 0)
    const rows = await db.query<{ version: number }>('SELECT version FROM schemaversion WHERE version > 0 ORDER BY version')
    assert.equal(rows.length, MIGRATIONS.length)
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
