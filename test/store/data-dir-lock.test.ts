import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { DataDirInUse, lockDataDir } from '../../src/store/data-dir-lock.js'
import { tempDir } from '../helpers/dirs.js'

test('a PGlite directory is locked by one process at a time; the lock goes with the release', async (t) => {
  const dir = join(tempDir(t, 'token-pool-lockdir-'), 'data', 'deeper')
  const release = await lockDataDir(dir)
  assert.equal(readFileSync(join(dir, 'token-pool.pid'), 'utf8'), `${process.pid}\n`)
  await assert.rejects(lockDataDir(dir), (err: unknown) => err instanceof DataDirInUse && err.pid === process.pid)
  release()
  assert.ok(!existsSync(join(dir, 'token-pool.pid')))
  ;(await lockDataDir(dir))()
})

test('a lock held by another live process is refused, naming it and how to recover', async (t) => {
  const dir = tempDir(t, 'token-pool-lockdir-')
  writeFileSync(join(dir, 'token-pool.pid'), `${process.ppid}\n`) // the test runner: alive
  await assert.rejects(lockDataDir(dir), (err: unknown) =>
    err instanceof DataDirInUse && err.pid === process.ppid && err.message.includes(`delete ${join(dir, 'token-pool.pid')}`))
})

test('a lock left by a process that is gone (killed), or an unreadable one, is taken over', async (t) => {
  const dir = tempDir(t, 'token-pool-lockdir-')
  const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid! // exited and reaped
  for (const left of [`${gone}\n`, 'not a pid', '']) {
    writeFileSync(join(dir, 'token-pool.pid'), left)
    const release = await lockDataDir(dir)
    assert.equal(readFileSync(join(dir, 'token-pool.pid'), 'utf8'), `${process.pid}\n`)
    release()
  }
})

test('processes starting together on a stale lock: exactly one takes it over', async (t) => {
  const dir = tempDir(t, 'token-pool-lockdir-')
  const holder = fileURLToPath(new URL('../helpers/lock-holder.ts', import.meta.url))
  const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid!
  for (let round = 0; round < 3; round++) {
    writeFileSync(join(dir, 'token-pool.pid'), `${gone}\n`)
    const at = String(Date.now() + 3000) // after every process has started
    const children = Array.from({ length: 4 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', holder, dir, at], { stdio: ['pipe', 'pipe', 'inherit'] })
      let out = ''
      const said = new Promise<string>((resolve) => {
        child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(out.trim()) })
        child.on('exit', () => { resolve(out.trim()) })
      })
      const exited = new Promise((resolve) => child.on('exit', resolve))
      return { child, said, exited }
    })
    // The winner holds the lock until every process has said, however late one started.
    const said = await Promise.all(children.map(async (c) => await c.said))
    for (const c of children) c.child.stdin.end()
    await Promise.all(children.map(async (c) => await c.exited))
    assert.deepEqual(said.sort(), ['in use', 'in use', 'in use', 'locked'], `round ${round}`)
  }
})
