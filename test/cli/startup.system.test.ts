import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, test } from 'node:test'
import { describeDatabase, listenProblem } from '../../src/cli/startup.js'
import { freePort, startServer } from '../helpers/server.js'
import { startServer as startCliServer } from './helpers/server.js'
import { tempDir } from '../helpers/dirs.js'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

async function holdPort (): Promise<{ server: Server, port: number }> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  return { server, port: (server.address() as { port: number }).port }
}

/** `token-pool serve` as a real process: its exit code and everything it wrote. */
async function serve (env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  // Should it start after all, it must not outlive the test.
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 30_000)
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

describe('the first five minutes of serve', () => {
  test('a port in use: exit 1 at once with one line naming the port, no stack trace', async (t) => {
    const { server, port } = await holdPort()
    t.after(() => { server.close() })
    const { code, stdout, stderr } = await serve({ HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: 'memory://', LOG_LEVEL: 'info' })
    assert.equal(code, 1, stderr)
    assert.equal(stderr, `token-pool: port ${port} on 127.0.0.1 is in use (set PORT or --port)\n`)
    // Refused before the database was opened: nothing about starting it was said.
    assert.doesNotMatch(stdout, /embedded database/)
  })

  test('listenProblem: undefined for a free port, the same line for a busy one', async (t) => {
    const { server, port } = await holdPort()
    t.after(() => { server.close() })
    assert.equal(await listenProblem('127.0.0.1', port), `port ${port} on 127.0.0.1 is in use (set PORT or --port)`)
    assert.equal(await listenProblem('127.0.0.1', 0), undefined)
  })

  test('a second server on the same PGlite directory: exit 1 with one line, the first unharmed', async (t) => {
    const dir = tempDir(t, 'token-pool-lock-')
    const env = { DATABASE_URL: pathToFileURL(dir).toString(), POOL_SIZE: '2' }
    const first = await startServer(env)
    t.after(async () => { first.child.kill('SIGKILL'); await first.exited })

    const { server, port } = await holdPort() // a free port for the second, released just before
    server.close()
    const second = await serve({ ...env, HOST: '127.0.0.1', PORT: String(port) })
    assert.equal(second.code, 1, second.stderr)
    assert.match(second.stderr, new RegExp(`^token-pool: .*in use by process ${first.child.pid!}: PGlite serves one process .*\\n$`))
    assert.equal(second.stderr.split('\n').length, 2, 'one line')
    assert.equal((await fetch(`${first.url}/readyz`)).status, 200)

    // Stopped cleanly, the first leaves no lock behind.
    first.child.kill('SIGTERM')
    assert.equal(await first.exited, 0)
    assert.ok(!existsSync(join(dir, 'token-pool.pid')))
  })

  test('the slow first start is announced when the data directory is new, and only then; a later start names the settings it changed', async (t) => {
    const dir = tempDir(t, 'token-pool-first-')
    const env = { DATABASE_URL: pathToFileURL(dir).toString(), POOL_SIZE: '2' }
    const first = await startCliServer(await freePort(), env)
    await first.stop()
    assert.ok(first.output().includes(`creating the embedded database in ${dir} (first start only; this can take a minute on a slow machine)`), first.output())
    // The directory PGlite made is known as made: the next start says so (no second start needed to see it).
    assert.equal(describeDatabase(env.DATABASE_URL), `starting the embedded database (PGlite in ${dir})`)
    assert.doesNotMatch(first.output(), /changed the default pool's settings/)

    // A start with another configuration says what it changed for every node.
    const second = await startCliServer(await freePort(), { ...env, POOL_SIZE: '3', USER_QUOTA: '2' })
    await second.stop()
    assert.ok(second.output().includes("this start changed the default pool's settings for every node sharing the database: size 2 → 3, user_quota unset → 2"), second.output())
  })

  test('what serve says before the database starts never includes the password', (t) => {
    const dir = tempDir(t, 'token-pool-describe-')
    const url = pathToFileURL(dir).toString()
    assert.equal(describeDatabase(url), `creating the embedded database in ${dir} (first start only; this can take a minute on a slow machine)`)
    writeFileSync(join(dir, 'PG_VERSION'), '17\n')
    assert.equal(describeDatabase(url), `starting the embedded database (PGlite in ${dir})`)
    assert.match(describeDatabase(undefined), /in \.\/data/)
    assert.equal(describeDatabase('memory://'), 'creating the embedded database in memory (this can take a minute on a slow machine)')
    const pg = describeDatabase('postgres://app:s3cret@db.internal:6543/pool?sslmode=require')
    assert.equal(pg, 'connecting to PostgreSQL at db.internal:6543/pool')
    assert.equal(describeDatabase('postgresql://db.internal/pool'), 'connecting to PostgreSQL at db.internal:5432/pool')
  })
})
