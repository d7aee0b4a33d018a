import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { TokenPoolClient } from '../../src/client/index.js'
import { CONFIG_FLAGS } from '../../src/config.js'
import { POSTGRES_URL } from '../helpers/db.js'
import { freePort } from '../helpers/server.js'
import { cli, cliEach, ROOT, serverDatabase, startServer, type Server } from './helpers/server.js'

const ADMIN = 'sesame'
const COMMANDS = [
  'status', 'allocate', 'release', 'renew', 'cooldown', 'history', 'stats', 'clear', 'pools',
  'disable', 'enable', 'label', 'export', 'watch',
]
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const admin = { ADMIN_TOKEN: ADMIN }

/** A command that runs until stopped (watch), as its own process. */
function spawnCli (args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, TOKEN_POOL_URL: '', ADMIN_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => { resolve(code ?? signal ?? -1) }))
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

async function until (what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  for (const start = Date.now(); !(await ok());) {
    if (Date.now() - start > timeoutMs) assert.fail(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const json = (stdout: string): any => JSON.parse(stdout)

for (const backend of ['pglite', 'postgres'] as const) {
  describe(`operator commands against a running token-pool serve [${backend}]`, {
    skip: backend === 'postgres' && POSTGRES_URL === undefined ? 'PostgreSQL half SKIPPED: set TEST_DATABASE_URL to run it' : false,
  }, () => {
    let server: Server
    let url: string
    let db: Awaited<ReturnType<typeof serverDatabase>>
    /** for the tests' own setup: faster than a command each */
    let client: TokenPoolClient
    before(async () => {
      db = await serverDatabase(backend, 'cli_')
      server = await startServer(await freePort(), { POOL_SIZE: '2', ADMIN_TOKEN: ADMIN, DATABASE_URL: db.url })
      url = server.url
      client = new TokenPoolClient({ url, adminToken: ADMIN })
    })
    after(async () => {
      await server?.stop()
      await db?.drop()
    })

    test('allocate, status, release, history, stats, clear: text for people, --json for scripts, exit 0', async () => {
      const [a, b] = [randomUUID(), randomUUID()]
      const text = cli(['allocate', '--user', a, '--url', url])
      assert.equal(text.code, 0, text.stderr)
      assert.match(text.stdout, new RegExp(`user: +${a}`))
      assert.match(text.stdout, /expires: +\S+Z \(in 120 s\)/)

      const json = cli(['allocate', '--user', b, '--json'], { TOKEN_POOL_URL: url })
      assert.equal(json.code, 0, json.stderr)
      const lease = JSON.parse(json.stdout)
      assert.equal(lease.user_id, b)
      assert.equal(lease.expires_in_seconds, 120)

      const status = cli(['status', '--url', url], admin) // with the admin token, holders' ids are shown
      assert.equal(status.code, 0, status.stderr)
      const lines = status.stdout.trim().split('\n')
      assert.match(lines[0]!, /^Pool default: 2 tokens: 2 active, 0 available, 0 cooling, 0 disabled, 0 waiting\. Usage window resets in \d+h \d\dm/)
      assert.match(lines[2]!, /^TOKEN +STATUS +HOLDER +TIME LEFT +USES$/)
      const row = lines.find((l) => l.includes(b))
      assert.match(row ?? '', new RegExp(`^${lease.token_id} +active +${b} +(1m 5\\ds|2m 00s) +1$`))
      const statusJson = JSON.parse(cli(['status', '--url', url, '--json', '--status', 'active']).stdout)
      assert.equal(statusJson.tokens.length, 2)
      assert.equal(statusJson.meta.total, 2)

      const released = cli(['release', lease.token_id, '--user', b, '--url', url])
      assert.equal(released.code, 0, released.stderr)
      assert.match(released.stdout, /reason: +released/)
      assert.match(released.stdout, new RegExp(`^lease: +${lease.lease_id}$`, 'm'), 'the lease that ended, as allocate named it')

      const history = cli(['history', lease.token_id, '--url', url], admin)
      assert.equal(history.code, 0, history.stderr)
      assert.match(history.stdout, /^LEASE +USER +STARTED +ENDED +REASON\n/)
      assert.match(history.stdout, new RegExp(`${b} +\\S+Z +\\S+Z +released`))
      const historyJson = JSON.parse(cli(['history', lease.token_id, '--url', url, '--json', '--limit', '1'], admin).stdout)
      assert.equal(historyJson.length, 1)
      assert.equal(historyJson[0].user_id, b)

      const stats = JSON.parse(cli(['stats', '--url', url, '--json']).stdout)
      assert.equal(stats.total, 2)
      assert.equal(stats.allocations_in_window, 2)
      assert.match(cli(['stats', '--url', url]).stdout, /allocations: +2 this window/)

      const cleared = cli(['clear', '--url', url, '--admin-token', ADMIN])
      assert.equal(cleared.code, 0, cleared.stderr)
      assert.equal(cleared.stdout, 'cleared 1 lease(s)\n')
      const clearedJson = cli(['clear', '--json'], { TOKEN_POOL_URL: url, ADMIN_TOKEN: ADMIN })
      assert.deepEqual(JSON.parse(clearedJson.stdout), { cleared_tokens: 0 })
    })

    test("exit 1 with the contract's error code when the service refuses", async () => {
      const user = randomUUID()
      const lease = JSON.parse(cli(['allocate', '--user', user, '--url', url, '--json']).stdout)

      const notHolder = cli(['release', lease.token_id, '--user', randomUUID(), '--url', url])
      assert.equal(notHolder.code, 1)
      assert.equal(notHolder.stdout, '')
      assert.match(notHolder.stderr, /^token-pool release: not_holder: .+ \[request [0-9a-f-]{36}\]\n$/)

      const asJson = cli(['release', lease.token_id, '--user', randomUUID(), '--url', url, '--json'])
      assert.equal(asJson.code, 1)
      const body = JSON.parse(asJson.stdout)
      assert.equal(body.error.code, 'not_holder')
      assert.equal(body.error.status, 409)
      assert.match(body.error.request_id, /^[0-9a-f-]{36}$/, 'the request id, as the text form prints it')

      const unauthorized = cli(['clear', '--url', url])
      assert.equal(unauthorized.code, 1)
      assert.match(unauthorized.stderr, /unauthorized/)
      const wrong = cli(['clear', '--url', url, '--admin-token', 'guess'])
      assert.equal(wrong.code, 1)

      const invalid = cli(['allocate', '--user', 'not-a-uuid', '--url', url, '--json'])
      assert.equal(invalid.code, 1)
      assert.equal(JSON.parse(invalid.stdout).error.details.field, 'user_id')

      const missing = cli(['history', randomUUID(), '--url', url])
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /not_found/)
    })

    test('pools, and pool create, set and delete with the admin token', async () => {
      const listed = cli(['pools', '--url', url, '--json'])
      assert.equal(listed.code, 0, listed.stderr)
      assert.ok(json(listed.stdout).some((p: { name: string }) => p.name === 'default'))

      const create = ['pool', 'create', 'keys', '--size', '2', '--lease-ttl-seconds', '30', '--lease-max-seconds', '600', '--on-exhausted', 'reject', '--url', url]
      const anonymous = cli(create)
      assert.equal(anonymous.code, 1)
      assert.match(anonymous.stderr, /^token-pool pool create: unauthorized: /)
      const created = cli(create, admin)
      assert.equal(created.code, 0, created.stderr)
      assert.match(created.stdout, /^pool: +keys$/m)
      assert.match(created.stdout, /^size: +2$/m)
      assert.match(created.stdout, /^lease ttl: +30 s$/m)
      assert.match(created.stdout, /^on exhausted: +reject$/m)
      assert.match(created.stdout, /^user quota: +none$/m)
      const exists = cli([...create, '--json'], admin)
      assert.equal(exists.code, 1)
      assert.equal(json(exists.stdout).error.code, 'pool_exists')

      const set = cli(['pool', 'set', 'keys', '--size', '3', '--user-quota', '50', '--url', url, '--json', '--admin-token', ADMIN])
      assert.equal(set.code, 0, set.stderr)
      const pool = json(set.stdout)
      assert.deepEqual([pool.name, pool.size, pool.total, pool.user_quota, pool.lease_ttl_seconds, pool.on_exhausted], ['keys', 3, 3, 50, 30, 'reject'])
      const noQuota = cli(['pool', 'set', 'keys', '--user-quota', 'none', '--url', url], admin)
      assert.equal(noQuota.code, 0, noQuota.stderr)
      assert.match(noQuota.stdout, /^user quota: +none$/m)
      assert.equal((await client.getPool('keys')).user_quota, null)
      assert.equal(cli(['pool', 'set', 'keys', '--user-quota', '50', '--url', url], admin).code, 0)
      const managed = cli(['pool', 'set', 'default', '--size', '5', '--url', url], admin)
      assert.equal(managed.code, 1)
      assert.match(managed.stderr, /managed_by_config/)

      const table = cli(['pools', '--url', url])
      assert.equal(table.code, 0, table.stderr)
      assert.match(table.stdout, /^POOL +SIZE +TTL +MAX +WINDOW +ON EXHAUSTED +QUOTA +MAX WAIT +MAX COOLDOWN +ACTIVE +AVAILABLE +COOLING +DISABLED +WAITING\n/)
      assert.match(table.stdout, /^keys +3 +30s +600s +24h +reject +50 +60s +3600s +0 +3 +0 +0 +0$/m)

      await client.pool('keys').allocate(randomUUID())
      const busy = cli(['pool', 'delete', 'keys', '--url', url], admin)
      assert.equal(busy.code, 1)
      assert.match(busy.stderr, /^token-pool pool delete: pool_busy: /)
      const deleted = cli(['pool', 'delete', 'keys', '--force', '--url', url], admin)
      assert.equal(deleted.code, 0, deleted.stderr)
      assert.equal(deleted.stdout, 'deleted pool keys\n')
      assert.ok(!json(cli(['pools', '--url', url, '--json']).stdout).some((p: { name: string }) => p.name === 'keys'))
      assert.equal(cli(['pool', 'delete', 'keys', '--url', url], admin).code, 1)
    })

    test('allocate, renew, cooldown, status, stats and clear with --pool: a user holds one lease in each pool', async () => {
      await client.createPool({ name: 'seats', size: 2, lease_ttl_seconds: 30, lease_max_seconds: 600, cooldown_max_seconds: 600 })
      const [u, v] = [randomUUID(), randomUUID()]
      const inSeats = cli(['allocate', '--user', u, '--pool', 'seats', '--url', url, '--json'])
      assert.equal(inSeats.code, 0, inSeats.stderr)
      const lease = json(inSeats.stdout)
      assert.deepEqual([lease.pool, lease.user_id, lease.expires_in_seconds], ['seats', u, 30])
      const text = cli(['allocate', '--user', u, '--url', url])
      assert.equal(text.code, 0, text.stderr)
      assert.match(text.stdout, /^pool: +default$/m)
      assert.doesNotMatch(text.stdout, new RegExp(lease.token_id))
      assert.equal(json(cli(['allocate', '--user', u, '--pool', 'seats', '--url', url, '--json']).stdout).lease_id, lease.lease_id)

      const renewed = cli(['renew', lease.token_id, '--user', u, '--pool', 'seats', '--url', url, '--json'])
      assert.equal(renewed.code, 0, renewed.stderr)
      const after = json(renewed.stdout)
      assert.deepEqual([after.lease_id, after.started_at, after.renewable_until], [lease.lease_id, lease.started_at, lease.renewable_until])
      assert.ok(after.expires_at > lease.expires_at)
      const renewedText = cli(['renew', lease.token_id, '--user', u, '--url', url])
      assert.equal(renewedText.code, 0, renewedText.stderr)
      assert.match(renewedText.stdout, /^expires: +\S+Z \(in (29|30) s\)$/m)
      assert.match(renewedText.stdout, new RegExp(`^renewable until: +${lease.renewable_until}$`, 'm'))
      const stranger = cli(['renew', lease.token_id, '--user', randomUUID(), '--pool', 'seats', '--url', url])
      assert.equal(stranger.code, 1)
      assert.match(stranger.stderr, /^token-pool renew: not_holder: /)
      const elsewhere = cli(['renew', lease.token_id, '--user', u, '--pool', 'default', '--url', url])
      assert.equal(elsewhere.code, 1)
      assert.match(elsewhere.stderr, /not_found/)

      await client.pool('seats').allocate(v)
      const status = cli(['status', '--pool', 'seats', '--url', url])
      assert.equal(status.code, 0, status.stderr)
      assert.match(status.stdout, /^Pool seats: 2 tokens: 2 active, 0 available, 0 cooling, 0 disabled, 0 waiting\./)
      assert.match(status.stdout, new RegExp(`^${lease.token_id} +active +[0-9a-f]{12} +\\d+s +1$`, 'm'), 'another user\'s id hidden: its holder fingerprint')
      const stats = cli(['stats', '--pool', 'seats', '--least-used-limit', '1', '--url', url, '--json'])
      assert.equal(stats.code, 0, stats.stderr)
      assert.deepEqual([json(stats.stdout).pool, json(stats.stdout).allocations_in_window, json(stats.stdout).least_used.length], ['seats', 2, 1])
      assert.match(cli(['stats', '--pool', 'seats', '--url', url]).stdout, /^pool: +seats$/m)
      const cleared = cli(['clear', '--pool', 'seats', '--url', url], admin)
      assert.equal(cleared.code, 0, cleared.stderr)
      assert.equal(cleared.stdout, 'cleared 2 lease(s)\n')

      // cooldown --reallocate: the holder moves to the other token; then no token is left to move to.
      const again = await client.pool('seats').allocate(u)
      const moved = cli(['cooldown', again.token_id, '--seconds', '30', '--user', u, '--reallocate', '--pool', 'seats', '--url', url, '--json'])
      assert.equal(moved.code, 0, moved.stderr)
      const result = json(moved.stdout)
      assert.deepEqual([result.token.status, result.ended_lease.release_reason, result.lease_error], ['cooling', 'cooldown', null])
      assert.notEqual(result.lease.token_id, again.token_id)
      const stuck = cli(['cooldown', result.lease.token_id, '--seconds', '30', '--user', u, '--reallocate', '--pool', 'seats', '--url', url])
      assert.equal(stuck.code, 0, stuck.stderr)
      assert.match(stuck.stdout, /^status: +cooling$/m)
      assert.match(stuck.stdout, /^no new lease: pool_exhausted: /m)
      const cooling = json(cli(['status', '--pool', 'seats', '--status', 'cooling', '--url', url, '--json']).stdout)
      assert.equal(cooling.tokens.length, 2)
      assert.match(cli(['status', '--pool', 'seats', '--url', url]).stdout, /^\S+ +cooling +- +\d+s +\d$/m)
      // An admin cooldown needs no holder, and the admin token.
      const token = (await client.list()).tokens[0]!.id
      assert.equal(cli(['cooldown', token, '--seconds', '5', '--url', url]).code, 1)
      assert.equal(cli(['cooldown', token, '--seconds', '5', '--url', url], admin).code, 0)
      await client.enable(token)

      // At the renewal cap: renewal_limit, with renewable_until in details.
      // TTL = cap, long enough that the CLI's start on a busy machine can't outlast the lease.
      await client.createPool({ name: 'capped', size: 1, lease_ttl_seconds: 60, lease_max_seconds: 60 })
      const capped = await client.pool('capped').allocate(u)
      const limit = cli(['renew', capped.token_id, '--user', u, '--pool', 'capped', '--url', url, '--json'])
      assert.equal(limit.code, 1)
      assert.deepEqual(json(limit.stdout).error.details, { renewable_until: capped.renewable_until })
      assert.equal(json(limit.stdout).error.code, 'renewal_limit')
    })

    test('disable, enable and label need the admin token', async () => {
      const token = (await client.list()).tokens[1]!.id
      const refused = cli(['disable', token, '--reason', 'revoked upstream', '--url', url])
      assert.equal(refused.code, 1)
      assert.match(refused.stderr, /^token-pool disable: unauthorized: /)
      const disabled = cli(['disable', token, '--reason', 'revoked upstream', '--url', url, '--admin-token', ADMIN])
      assert.equal(disabled.code, 0, disabled.stderr)
      assert.match(disabled.stdout, /^status: +disabled$/m)
      assert.match(disabled.stdout, /^reason: +revoked upstream$/m)
      const listed = json(cli(['status', '--status', 'disabled', '--url', url, '--json']).stdout)
      assert.deepEqual(listed.tokens.map((t: { id: string }) => t.id), [token])
      assert.equal(listed.tokens[0].disabled_reason, 'revoked upstream')
      assert.equal(cli(['disable', token, '--url', url], admin).code, 0, 'harmless to repeat')

      const enabled = cli(['enable', token, '--url', url, '--json'], admin)
      assert.equal(enabled.code, 0, enabled.stderr)
      assert.deepEqual([json(enabled.stdout).token.status, json(enabled.stdout).token.disabled_reason], ['available', null])
      assert.equal(cli(['enable', token, '--url', url]).code, 1)

      const labelled = cli(['label', token, 'key #7 (billing team)', '--url', url], admin)
      assert.equal(labelled.code, 0, labelled.stderr)
      assert.match(labelled.stdout, /^label: +key #7 \(billing team\)$/m)
      assert.equal((await client.get(token)).label, 'key #7 (billing team)')
      const removed = cli(['label', token, '--remove', '--url', url], admin)
      assert.equal(removed.code, 0, removed.stderr)
      assert.equal((await client.get(token)).label, null)
      assert.match(removed.stdout, /^label: +-$/m)

      const missing = cli(['disable', randomUUID(), '--url', url], admin)
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /not_found/)
    })

    test('export writes every usage to stdout, as NDJSON or CSV, within --since and --until', async () => {
      await client.createPool({ name: 'exp', size: 2 })
      const exp = client.pool('exp')
      const leases = []
      for (let i = 0; i < 3; i++) {
        const user = randomUUID()
        const lease = await exp.allocate(user)
        leases.push(lease)
        if (i < 2) await exp.release(lease.token_id, user)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      const refused = cli(['export', '--pool', 'exp', '--url', url])
      assert.equal(refused.code, 1)
      assert.equal(refused.stdout, '')
      assert.match(refused.stderr, /unauthorized/)

      const ndjson = cli(['export', '--pool', 'exp', '--url', url], admin)
      assert.equal(ndjson.code, 0, ndjson.stderr)
      const rows = ndjson.stdout.trimEnd().split('\n').map((l) => JSON.parse(l))
      assert.deepEqual(rows.map((r) => r.lease_id), leases.map((l) => l.lease_id))
      assert.ok(rows.every((r) => r.pool === 'exp'))
      assert.deepEqual(rows.map((r) => r.release_reason), ['released', 'released', null])

      const csv = cli(['export', '--pool', 'exp', '--format', 'csv', '--url', url], admin)
      assert.equal(csv.code, 0, csv.stderr)
      const lines = csv.stdout.trimEnd().split('\n')
      // This service runs with ADMIN_TOKEN: the holder's fingerprint ends each row.
      assert.equal(lines[0], 'pool,token_id,lease_id,user_id,started_at,expires_at,released_at,release_reason,holder')
      assert.equal(lines.length, 4)
      assert.match(lines[3]!, new RegExp(`^exp,${leases[2]!.token_id},${leases[2]!.lease_id},${leases[2]!.user_id},.*,,,[0-9a-f]{12}$`))

      const since = cli(['export', '--pool', 'exp', '--since', leases[1]!.started_at, '--until', leases[2]!.started_at, '--url', url], admin)
      assert.equal(since.code, 0, since.stderr)
      assert.deepEqual(since.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).lease_id), [leases[1]!.lease_id])
      const all = cli(['export', '--url', url, '--json'], admin)
      assert.equal(all.code, 0, all.stderr)
      assert.ok(all.stdout.trimEnd().split('\n').every((l) => JSON.parse(l).pool === 'default'))
      assert.equal(cli(['export', '--pool', 'nope', '--url', url], admin).code, 1)
    })

    test('watch prints one line an event, --pool keeps one pool, --json one object a line, until Ctrl-C', async (t) => {
      await client.createPool({ name: 'w', size: 2 })
      const text = spawnCli(['watch', '--pool', 'w', '--url', url], admin)
      const lines = spawnCli(['watch', '--json', '--url', url], admin)
      // Live from when each has subscribed: poke the pool until both have shown something.
      await until('both watchers to be live', async () => {
        const user = randomUUID()
        const lease = await client.pool('w').allocate(user)
        await client.pool('w').release(lease.token_id, user)
        return text.stdout().includes('released') && lines.stdout().includes('"released"')
      })
      const user = randomUUID()
      const other = await client.allocate(user)
      const lease = await client.pool('w').allocate(user)
      await client.pool('w').cooldown(lease.token_id, { userId: user, seconds: 5 })
      await until('the cooldown in both', () => text.stdout().includes(' cooling ') && lines.stdout().includes('"cooling"'))

      const mine = text.stdout().split('\n').filter((l) => l.includes(user))
      assert.match(mine[0] ?? '', new RegExp(`Z  allocated +w  token ${lease.token_id}  user ${user}  lease ${lease.lease_id}  expires \\S+Z$`))
      assert.match(mine[1] ?? '', new RegExp(`Z  released +w  token ${lease.token_id}  user ${user}  lease ${lease.lease_id}  cooldown$`))
      assert.ok(!text.stdout().includes(other.token_id), 'another pool\'s events are not shown')
      const events = lines.stdout().trimEnd().split('\n').map((l) => JSON.parse(l))
      assert.ok(events.some((e) => e.type === 'allocated' && e.data.pool === 'default' && e.data.token_id === other.token_id))
      assert.ok(events.some((e) => e.type === 'cooling' && e.data.id === lease.token_id && typeof e.id === 'string'))

      text.child.kill('SIGINT')
      lines.child.kill('SIGINT')
      assert.equal(await text.exited, 0, text.stderr())
      assert.equal(await lines.exited, 0, lines.stderr())
      assert.equal(text.stderr(), '')

      const missing = cli(['watch', '--pool', 'nope', '--url', url])
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /not_found/)
    })
  })
}

test('--help on every command: usage, options and the exit codes, exit 0', async () => {
  const subcommands = ['create', 'set', 'delete']
  const runs = await cliEach([...COMMANDS.map((name) => [name, '--help']), ...subcommands.map((name) => ['pool', name, '--help']), ['pool', '--help'], ['--help']])
  COMMANDS.forEach((name, i) => {
    const r = runs[i]!
    assert.equal(r.code, 0, name)
    assert.match(r.stdout, new RegExp(`^Usage: token-pool ${name}`))
    assert.match(r.stdout, /--url URL/)
    assert.match(r.stdout, /--json/)
    assert.match(r.stdout, /Exit codes:\n {2}0 {2}done\n {2}1 .+\n {2}2 {2}bad command line\n {2}3 {2}the service could not be reached\n {2}4 {2}token-pool itself failed/)
  })
  subcommands.forEach((name, i) => {
    const r = runs[COMMANDS.length + i]!
    assert.equal(r.code, 0, name)
    assert.match(r.stdout, new RegExp(`^Usage: token-pool pool ${name} NAME`))
    assert.match(r.stdout, /Exit codes:/)
  })
  assert.match(runs[COMMANDS.length]!.stdout, /--user-quota N\|none/)
  const [group, top] = runs.slice(COMMANDS.length + subcommands.length)
  assert.equal(group!.code, 0)
  assert.match(group!.stdout, /^ {2}pool create /m)
  for (const name of [...COMMANDS, 'pool']) assert.match(top!.stdout, new RegExp(`^ {2}${name} `, 'm'))
})

test('serve --help and migrate --help: each setting with its variable, what it means and its default', async () => {
  const [serve, migrate] = await cliEach([['serve', '--help'], ['migrate', '-h']])
  /** the help of one flag: its line and the indented lines under it, each ending in a newline */
  const entry = (help: string, flag: string) => help.split(/(?<=\n)(?= {2}-)/).find((b) => b.startsWith(`  --${flag} `)) ?? ''
  assert.equal(serve!.code, 0, serve!.stderr)
  assert.match(serve!.stdout, /^Usage: token-pool serve \[options\]\n/)
  for (const flag of CONFIG_FLAGS) {
    const env = flag.toUpperCase().replaceAll('-', '_')
    assert.match(entry(serve!.stdout, flag), new RegExp(`^ {2}--${flag} \\S+ {2}\\(${env}\\)\\n( {6}\\S.*\\n)+ {6}default: \\S.*\\n`), flag)
  }
  const defaults: Array<[string, string]> = [['port', '4000'], ['pool-size', '100'], ['lease-ttl-seconds', '120'], ['on-exhausted', 'evict_oldest'],
    ['database-url', 'PGlite kept in ./data'], ['lease-max-seconds', 'LEASE_TTL_SECONDS'], ['user-quota', 'none (no limit)'], ['admin-token', 'unset']]
  for (const [flag, byDefault] of defaults) {
    assert.ok(entry(serve!.stdout, flag).includes(`\n      default: ${byDefault}\n`), `${flag}: ${entry(serve!.stdout, flag)}`)
  }
  assert.match(serve!.stdout, /\n {2}4 {2}token-pool itself failed/)

  assert.equal(migrate!.code, 0, migrate!.stderr)
  assert.match(migrate!.stdout, /^Usage: token-pool migrate \[--database-url URL\]\n/)
  assert.match(entry(migrate!.stdout, 'database-url'), /\(DATABASE_URL\)\n[^]*postgres:\/\/[^]*\n {6}default: PGlite kept in \.\/data\n/)
  assert.equal(entry(migrate!.stdout, 'pool-size'), '', 'only the setting migrate uses')
  assert.match(migrate!.stdout, /\n {2}4 {2}token-pool itself failed/)
})

test('exit 2 on a bad command line, with one line on stderr that points at --help, before reaching the service', async () => {
  const url = 'http://127.0.0.1:4599'
  const token = randomUUID()
  const cases = [
    ['allocate', '--url', url],
    ['allocate', '--user'],
    ['allocate', '--user', randomUUID(), '--pool', 'Not A Pool'],
    ['release', '--user', randomUUID(), '--url', url],
    ['release', randomUUID(), randomUUID(), '--user', randomUUID()],
    ['status', '--status', 'busy', '--url', url],
    ['stats', '--frobnicate'],
    ['stats', '--least-used-limit', '0', '--url', url],
    ['history', randomUUID(), '--limit', '0', '--url', url],
    ['stats', '--url', 'localhost:4000'],
    ['renew', token, '--url', url],
    ['cooldown', token, '--user', randomUUID(), '--url', url],
    ['cooldown', token, '--seconds', '0', '--url', url],
    ['cooldown', token, '--seconds', 'soon', '--url', url],
    ['cooldown', token, '--seconds', '5', '--reallocate', '--url', url],
    ['label', token, '--url', url],
    ['label', token, 'text', '--remove', '--url', url],
    ['disable', '--url', url],
    ['enable', token, token, '--url', url],
    ['export', '--format', 'xml', '--url', url],
    ['export', '--since', 'yesterday', '--url', url],
    ['watch', '--pool', 'Not A Pool', '--url', url],
    ['pools', 'extra', '--url', url],
    ['pool create', '--url', url],
    ['pool create', 'x', '--size', 'big', '--url', url],
    ['pool create', 'x', '--on-exhausted', 'wait', '--url', url],
    ['pool create', 'x', '--user-quota', 'lots', '--url', url],
    ['pool set', 'x', '--url', url],
    ['pool delete', 'x', '--frobnicate', '--url', url],
  ]
  const runs = await cliEach([...cases.map(([name, ...rest]) => [...name!.split(' '), ...rest]), ['pool'], ['pool', 'rename', 'x'], ['no-such-command']])
  cases.forEach(([name, ...rest], i) => {
    const r = runs[i]!
    assert.equal(r.code, 2, `${name} ${rest.join(' ')}: ${r.stdout}${r.stderr}`)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, new RegExp(`^token-pool ${name}: [^\\n]+ \\(see token-pool ${name} --help\\)\\n$`))
  })
  const [pool, rename, unknown] = runs.slice(cases.length)
  assert.deepEqual([pool!.code, pool!.stderr], [2, 'token-pool pool: missing create, set or delete (see token-pool pool --help)\n'])
  assert.deepEqual([rename!.code, rename!.stderr], [2, 'token-pool pool: unknown subcommand "rename" (see token-pool pool --help)\n'])
  assert.deepEqual([unknown!.code, unknown!.stderr], [2, 'token-pool: unknown command "no-such-command" (see token-pool --help)\n'])
})

test('a bad option is said in our words, not with parseArgs\'s advice to pass it after --', async () => {
  const token = randomUUID()
  const cases: Array<[string[], string]> = [
    [['history', token, '--pool', 'default'], 'token-pool history: unknown option --pool (see token-pool history --help)'],
    [['history', token, '--pool'], 'token-pool history: unknown option --pool (see token-pool history --help)'],
    [['status', '--pool'], 'token-pool status: --pool needs a value (see token-pool status --help)'],
    [['status', '--bogus'], 'token-pool status: unknown option --bogus (see token-pool status --help)'],
    [['release', token, '-x'], 'token-pool release: unknown option -x (see token-pool release --help)'],
    [['stats', '--json=yes'], 'token-pool stats: --json takes no value (see token-pool stats --help)'],
    [['allocate', '--user', '--json'],
      'token-pool allocate: --user needs a value, not the option --json; for a value that starts with -, write --user=VALUE (see token-pool allocate --help)'],
    [['pool', 'create', 'x', '--bogus'], 'token-pool pool create: unknown option --bogus (see token-pool pool create --help)'],
    [['serve', '--bogus'], 'token-pool serve: unknown option --bogus (see token-pool serve --help)'],
    [['serve', 'now'], 'token-pool serve: unexpected argument "now" (see token-pool serve --help)'],
    [['migrate', '--database-url'], 'token-pool migrate: --database-url needs a value (see token-pool migrate --help)'],
    [['simulate', '5', '--bogus'], 'token-pool simulate: unknown option --bogus (see token-pool simulate --help)'],
  ]
  const runs = await cliEach(cases.map(([args]) => args))
  cases.forEach(([args, line], i) => {
    assert.deepEqual([runs[i]!.code, runs[i]!.stdout, runs[i]!.stderr], [2, '', line + '\n'], args.join(' '))
  })
})

test('exit 3 when the service cannot be reached, also with --json', async () => {
  const down = 'http://127.0.0.1:4599'
  const token = randomUUID()
  const commands = [
    ['status'], ['stats'], ['allocate', '--user', randomUUID()], ['clear'], ['pools'], ['pool', 'create', 'x'],
    ['renew', token, '--user', randomUUID()], ['cooldown', token, '--seconds', '1'], ['disable', token], ['label', token, 'x'],
    ['export'], ['watch'],
  ]
  const runs = await cliEach(commands.map((args) => [...args, '--url', down]))
  commands.forEach((args, i) => {
    assert.equal(runs[i]!.code, 3, `${args.join(' ')}: ${runs[i]!.stderr}`)
    assert.match(runs[i]!.stderr, /cannot reach http:\/\/127\.0\.0\.1:4599: ECONNREFUSED/)
  })
  const json = cli(['stats', '--json'], { TOKEN_POOL_URL: down })
  assert.equal(json.code, 3)
  assert.equal(JSON.parse(json.stdout).error.code, 'unreachable')
})
