import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { DataDirInUse, lockDataDir } from '../../src/store/data-dir-lock.js'

function scratch (t: import('node:test').TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'token-pool-lockdir-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

test('a PGlite directory is locked by one process at a time; the lock goes with the release', async (t) => {
  const dir = join(scratch(t), 'data', 'deeper')
  const release = await lockDataDir(dir)
  assert.equal(readFileSync(join(dir, 'token-pool.pid'), 'utf8'), `${process.pid}\n`)
  await assert.rejects(lockDataDir(dir), (err: unknown) => err instanceof DataDirInUse && err.pid === process.pid)
  release()
  assert.ok(!existsSync(join(dir, 'token-pool.pid')))
  ;(await lockDataDir(dir))()
})

test('a lock held by another live process is refused, naming it and how to recover', async (t) => {
  const dir = scratch(t)
  writeFileSync(join(dir, 'token-pool.pid'), `${process.ppid}\n`) // the test runner: alive
  await assert.rejects(lockDataDir(dir), (err: unknown) =>
    err instanceof DataDirInUse && err.pid === process.ppid && err.message.includes(`delete ${join(dir, 'token-pool.pid')}`))
})

test('a lock left by a process that is gone (killed), or an unreadable one, is taken over', async (t) => {
  const dir = scratch(t)
  const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid! // exited and reaped
  for (const left of [`${gone}\n`, 'not a pid', '']) {
    writeFileSync(join(dir, 'token-pool.pid'), left)
    const release = await lockDataDir(dir)
    assert.equal(readFileSync(join(dir, 'token-pool.pid'), 'utf8'), `${process.pid}\n`)
    release()
  }
})
