import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { PoolError } from '../../src/domain/errors.js'
import type { Db } from '../../src/store/db.js'
import { openPostgres } from '../../src/store/pg-db.js'
import { translateDbError } from '../../src/store/sqlstate.js'
import { describeMultiConnection, POSTGRES_URL } from '../helpers/db.js'

// A real server refusing us, not a hand-made error: the codes and messages are whatever PostgreSQL and pg send.
describeMultiConnection('a database that refuses connections is 503 unavailable, never 500', () => {
  const name = 'tp_refused_' + randomBytes(6).toString('hex')
  const renamed = name + '_gone'
  let admin: Db

  const urlOf = (database: string) => {
    const url = new URL(POSTGRES_URL ?? '')
    url.pathname = '/' + database
    return url.toString()
  }

  /** The error of one query through a fresh openPostgres (a pool with an idle connection would not reconnect). */
  async function failureOf (database: string, sql = 'SELECT 1'): Promise<unknown> {
    const db = openPostgres(urlOf(database), { max: 1 })
    try {
      await db.query(sql)
    } catch (err) {
      return err
    } finally {
      await db.close()
    }
    assert.fail(`${sql} on ${database} succeeded`)
  }

  function assertUnavailable (err: unknown, message: RegExp): void {
    const out = translateDbError(err)
    assert.ok(out instanceof PoolError, `not translated: ${String(err)} (${(err as { code?: string }).code})`)
    assert.equal(out.code, 'unavailable')
    assert.equal(out.status, 503)
    assert.match(out.message, message)
  }

  before(async () => {
    admin = openPostgres(POSTGRES_URL ?? '', { max: 1 })
    await admin.query(`CREATE DATABASE ${name}`)
  })

  after(async () => {
    for (const db of [name, renamed]) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
    await admin.close()
  })

  test('the database is reachable to begin with', async () => {
    const db = openPostgres(urlOf(name), { max: 1 })
    try {
      assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }])
    } finally {
      await db.close()
    }
  })

  test('ALLOW_CONNECTIONS false (55000): unavailable, nothing was changed', async () => {
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)
    try {
      const err = await failureOf(name)
      assert.equal((err as { code?: string }).code, '55000')
      assertUnavailable(err, /nothing was changed/)
    } finally {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`)
    }
  })

  test('the connection killed mid-statement (57P01): unavailable, the outcome is unknown', async () => {
    const pending = failureOf(name, 'SELECT pg_sleep(30)')
    // Wait for the statement to be running, then end its backend as an operator would.
    for (let i = 0; ; i++) {
      const [row] = await admin.query<{ n: number }>(
        'SELECT pg_terminate_backend(pid)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE \'SELECT pg_sleep%\'', [name])
      if (row?.n === 1) break
      if (i > 100) assert.fail('the statement never started')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assertUnavailable(await pending, /the outcome is unknown; retrying is safe/)
  })

  test('the database renamed away, then dropped (3D000): unavailable, nothing was changed', async () => {
    await admin.query(`ALTER DATABASE ${name} RENAME TO ${renamed}`)
    let err = await failureOf(name)
    assert.equal((err as { code?: string }).code, '3D000')
    assertUnavailable(err, /nothing was changed/)

    await admin.query(`DROP DATABASE ${renamed}`)
    err = await failureOf(renamed)
    assert.equal((err as { code?: string }).code, '3D000')
    assertUnavailable(err, /nothing was changed/)
  })
})
