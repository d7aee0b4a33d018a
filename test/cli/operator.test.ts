import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { cli, startServer, type Server } from './helpers/server.js'

const ADMIN = 'sesame'
const COMMANDS = ['status', 'allocate', 'release', 'history', 'clear', 'stats']

describe('operator commands against a running token-pool serve', () => {
  let server: Server
  let url: string
  before(async () => {
    server = await startServer(4510, { POOL_SIZE: '2', ADMIN_TOKEN: ADMIN })
    url = server.url
  })
  after(async () => { await server.stop() })

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

    const status = cli(['status', '--url', url])
    assert.equal(status.code, 0, status.stderr)
    const lines = status.stdout.trim().split('\n')
    assert.match(lines[0]!, /^2 tokens: 2 active, 0 available\. Usage window resets in \d+h \d\dm/)
    assert.match(lines[2]!, /^TOKEN +STATUS +HOLDER +TIME LEFT +USES$/)
    const row = lines.find((l) => l.includes(b))
    assert.match(row ?? '', new RegExp(`^${lease.token_id} +active +${b} +(1m 5\\ds|2m 00s) +1$`))
    const statusJson = JSON.parse(cli(['status', '--url', url, '--json', '--status', 'active']).stdout)
    assert.equal(statusJson.tokens.length, 2)
    assert.equal(statusJson.meta.total, 2)

    const released = cli(['release', lease.token_id, '--user', b, '--url', url])
    assert.equal(released.code, 0, released.stderr)
    assert.match(released.stdout, /reason: +released/)

    const history = cli(['history', lease.token_id, '--url', url])
    assert.equal(history.code, 0, history.stderr)
    assert.match(history.stdout, /^LEASE +USER +STARTED +ENDED +REASON\n/)
    assert.match(history.stdout, new RegExp(`${b} +\\S+Z +\\S+Z +released`))
    const historyJson = JSON.parse(cli(['history', lease.token_id, '--url', url, '--json', '--limit', '1']).stdout)
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

  test('exit 2 on a bad command line, with the usage on stderr', () => {
    const cases = [
      ['allocate', '--url', url],
      ['allocate', '--user'],
      ['release', '--user', randomUUID(), '--url', url],
      ['release', randomUUID(), randomUUID(), '--user', randomUUID()],
      ['status', '--status', 'busy', '--url', url],
      ['stats', '--frobnicate'],
      ['history', randomUUID(), '--limit', '0', '--url', url],
      ['stats', '--url', 'localhost:4000'],
    ]
    for (const args of cases) {
      const r = cli(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
      assert.match(r.stderr, new RegExp(`^token-pool ${args[0]}: .+\\n\\nUsage: token-pool ${args[0]}`))
    }
    assert.equal(cli(['no-such-command']).code, 2)
  })

  test('exit 3 when the service cannot be reached, also with --json', () => {
    const down = 'http://127.0.0.1:4599'
    for (const args of [['status'], ['stats'], ['allocate', '--user', randomUUID()], ['clear']]) {
      const r = cli([...args, '--url', down])
      assert.equal(r.code, 3, `${args[0]}: ${r.stderr}`)
      assert.match(r.stderr, /cannot reach http:\/\/127\.0\.0\.1:4599: ECONNREFUSED/)
    }
    const json = cli(['stats', '--json'], { TOKEN_POOL_URL: down })
    assert.equal(json.code, 3)
    assert.equal(JSON.parse(json.stdout).error.code, 'unreachable')
  })
})

test('--help on every command: usage, options and the exit codes, exit 0', () => {
  for (const name of COMMANDS) {
    const r = cli([name, '--help'])
    assert.equal(r.code, 0, name)
    assert.match(r.stdout, new RegExp(`^Usage: token-pool ${name}`))
    assert.match(r.stdout, /--url URL/)
    assert.match(r.stdout, /--json/)
    assert.match(r.stdout, /Exit codes:\n {2}0 {2}done\n {2}1 .+\n {2}2 {2}bad command line\n {2}3 {2}the service could not be reached/)
  }
  const top = cli(['--help'])
  for (const name of COMMANDS) assert.match(top.stdout, new RegExp(`^ {2}${name} `, 'm'))
})
