import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { initdbApart, openPglite } from '../../src/store/pglite-db.js'
import { tempDir } from '../helpers/dirs.js'

test('a new PGlite directory is made by a child process, and the server opens it after', async (t) => {
  const dir = tempDir(t, 'token-pool-initdb-')
  const dataDir = join(dir, 'data')

  await initdbApart(dataDir)
  assert.ok(existsSync(join(dataDir, 'PG_VERSION')), 'the child ran initdb')

  const db = await openPglite(dataDir)
  try {
    const [row] = await db.query<{ one: number }>('SELECT 1 AS one')
    assert.equal(row?.one, 1)
  } finally {
    await db.close()
  }
})

test('a directory that cannot be made: the child\'s failure is not the answer, the open reports it', async () => {
  await initdbApart('/dev/null/token-pool') // resolves
  await assert.rejects(openPglite('/dev/null/token-pool'), /ENOTDIR/)
})
