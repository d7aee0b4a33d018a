import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { TokenPoolClient, type Lease } from '../../src/client/index.js'
import { queueLine } from '../../src/cli/allocate.js'
import { POSTGRES_URL } from '../helpers/db.js'
import { freePort } from '../helpers/server.js'
import { until } from '../helpers/until.js'
import { cli, ROOT, serverDatabase, startServer, type Server } from './helpers/server.js'

// `token-pool allocate --wait` and `cooldown --reallocate --wait` against a running `token-pool serve`.

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

/** A command that waits, as its own process, so the test can act while it does. */
function spawnCli (args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, TOKEN_POOL_URL: '', ADMIN_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => { resolve(code ?? signal ?? -1) }))
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

for (const backend of ['pglite', 'postgres'] as const) {
  describe(`allocate --wait and cooldown --reallocate --wait against token-pool serve [${backend}]`, {
    skip: backend === 'postgres' && POSTGRES_URL === undefined ? 'PostgreSQL half SKIPPED: set TEST_DATABASE_URL to run it' : false,
  }, () => {
    let server: Server
    let url: string
    let db: Awaited<ReturnType<typeof serverDatabase>>
    let client: TokenPoolClient
    before(async () => {
      db = await serverDatabase(backend, 'cliwait_')
      // One token, refused when taken: a second user has to wait.
      server = await startServer(await freePort(), { POOL_SIZE: '1', ON_EXHAUSTED: 'reject', DATABASE_URL: db.url })
      url = server.url
      client = new TokenPoolClient({ url })
    })
    after(async () => {
      await server?.stop()
      await db?.drop()
    })

    test('allocate --wait: a "waiting: position 1" line on stderr, then the lease once the holder releases', async () => {
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
      const held = await client.allocate(a)
      const waiting = spawnCli(['allocate', b, '--wait', '30', '--url', url])
      await until(() => waiting.stderr().includes('waiting: position 1'), 'the waiting line', 3000)
      assert.match(waiting.stderr(), /^waiting: position 1 of 1, served by \d\d:\d\d:\d\d at the latest \(in \d+ s\)\n/)
      assert.equal(waiting.stdout(), '', 'nothing on stdout until served')
      await client.release(held.token_id, a)
      assert.equal(await waiting.exited, 0, waiting.stderr())
      assert.match(waiting.stdout(), new RegExp(`^pool: +default\ntoken: +${held.token_id}\nuser: +${b}\n`))

      // --json: stdout is the lease alone; the queue's lines still go to stderr.
      const json = spawnCli(['allocate', '--user', c, '--wait', '30', '--json', '--url', url])
      await until(() => json.stderr().includes('waiting: position 1'), 'the waiting line', 3000)
      await client.release(held.token_id, b)
      assert.equal(await json.exited, 0, json.stderr())
      const lease = JSON.parse(json.stdout())
      assert.deepEqual([lease.user_id, lease.token_id], [c, held.token_id])
      await client.release(held.token_id, c)
    })

    test('allocate --wait that runs out exits 1 with pool_exhausted; above max_wait_seconds exits 1 with validation_failed', async () => {
      const a = randomUUID()
      const held = await client.allocate(a)
      const timedOut = cli(['allocate', randomUUID(), '--wait', '0.5', '--url', url])
      assert.equal(timedOut.code, 1, timedOut.stderr)
      assert.match(timedOut.stderr, /^waiting: position 1 of 1, /)
      assert.match(timedOut.stderr, /\ntoken-pool allocate: pool_exhausted: /)
      const asJson = cli(['allocate', randomUUID(), '--wait', '0.5', '--json', '--url', url])
      assert.equal(asJson.code, 1)
      assert.equal(JSON.parse(asJson.stdout).error.code, 'pool_exhausted')
      assert.equal(JSON.parse(asJson.stdout).error.status, 409)

      const tooLong = cli(['allocate', randomUUID(), '--wait', '61', '--json', '--url', url])
      assert.equal(tooLong.code, 1)
      assert.deepEqual([JSON.parse(tooLong.stdout).error.code, JSON.parse(tooLong.stdout).error.details.field], ['validation_failed', 'wait_seconds'])
      await client.release(held.token_id, a)
    })

    test('Ctrl-C while waiting leaves the queue: the freed token goes to the next one to ask', async (t) => {
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
      const held = await client.allocate(a)
      // Whatever happens, the token is free for the next test.
      t.after(async () => { for (const user of [a, b, c]) await client.release(held.token_id, user).catch(() => {}) })
      const waiting = spawnCli(['allocate', b, '--wait', '30', '--url', url])
      await until(() => waiting.stderr().includes('waiting: position 1'), 'the waiting line', 3000)
      waiting.child.kill('SIGINT')
      assert.notEqual(await waiting.exited, 0)
      await client.release(held.token_id, a)
      // The service sees the connection close: c, asking without waiting, gets the token.
      let lease: Lease | undefined
      await until(async () => (lease = await client.allocate(c).catch(() => undefined)) !== undefined, 'c gets the token', 1500)
      assert.equal(lease?.user_id, c)
    })

    test('cooldown --reallocate --wait: the new lease waits for the token to cool down', async () => {
      const a = randomUUID()
      const held = await client.allocate(a)
      // The only token cools for 1 s: the holder's new lease is that same token, once it is back.
      const r = cli(['cooldown', held.token_id, '--seconds', '1', '--user', a, '--reallocate', '--wait', '10', '--json', '--url', url])
      assert.equal(r.code, 0, r.stderr)
      const result = JSON.parse(r.stdout)
      assert.equal(result.lease_error, null)
      assert.deepEqual([result.lease.user_id, result.lease.token_id], [a, held.token_id])
      assert.ok(result.lease.lease_id > held.lease_id)
      await client.release(held.token_id, a)
    })

    test('exit 2 on a bad --wait, with one line on stderr', () => {
      const token = randomUUID()
      for (const args of [
        ['allocate', randomUUID(), '--wait', 'abc'],
        ['allocate', randomUUID(), '--wait=-1'],
        ['allocate', randomUUID(), '--wait', ''],
        ['allocate', randomUUID(), '--user', randomUUID()],
        ['cooldown', token, '--seconds', '5', '--user', randomUUID(), '--reallocate', '--wait', 'soon'],
        ['cooldown', token, '--seconds', '5', '--user', randomUUID(), '--wait', '5'],
      ]) {
        const r = cli([...args, '--url', url])
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
        assert.match(r.stderr, new RegExp(`^token-pool ${args[0]}: [^\\n]+ \\(see token-pool ${args[0]} --help\\)\\n$`))
      }
      assert.equal(cli(['allocate', randomUUID(), '--wait', 'abc', '--url', url]).stderr,
        'token-pool allocate: --wait must be a number from 0, not "abc" (see token-pool allocate --help)\n')
    })
  })
}

test('the queue line: position, count, and the served-by time or none yet', () => {
  const now = Date.parse('2026-01-01T12:00:00Z')
  const at = new Date(now + 36_200)
  const hhmmss = [at.getHours(), at.getMinutes(), at.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
  assert.equal(queueLine({ position: 2, waiting: 5, estimatedGrantAt: at }, now), `waiting: position 2 of 5, served by ${hhmmss} at the latest (in 37 s)`)
  assert.equal(queueLine({ position: 1, waiting: 1, estimatedGrantAt: null }, now), 'waiting: position 1 of 1, no served-by time yet')
})

test('allocate --help and cooldown --help tell of --wait', () => {
  assert.match(cli(['allocate', '--help']).stdout, /--wait SECONDS +when no token is free/)
  assert.match(cli(['cooldown', '--help']).stdout, /--wait SECONDS +with --reallocate/)
})
