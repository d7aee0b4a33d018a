import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../src/config.js'

describe('configuration', () => {
  test('defaults follow the contract', () => {
    assert.deepEqual({ ...loadConfig({}) }, {
      port: 4000,
      host: '0.0.0.0',
      databaseUrl: undefined,
      poolSize: 100,
      leaseTtlSeconds: 120,
      leaseMaxSeconds: undefined,
      usageWindowHours: 24,
      onExhausted: 'evict_oldest',
      maxWaitSeconds: 60,
      cooldownMaxSeconds: 3600,
      userQuota: null,
      adminToken: undefined,
      logLevel: 'info',
      rateLimitPerMinute: 0,
    })
  })

  test('flags win over the environment; fractional TTLs are allowed', () => {
    const c = loadConfig({ POOL_SIZE: '5', LEASE_TTL_SECONDS: '0.5' }, { 'pool-size': '7' })
    assert.equal(c.poolSize, 7)
    assert.equal(c.leaseTtlSeconds, 0.5)
  })

  for (const [env, value] of [['POOL_SIZE', '0'], ['POOL_SIZE', '1.5'], ['PORT', '70000'], ['LEASE_TTL_SECONDS', '0'], ['LEASE_TTL_SECONDS', '86401'],
    ['LEASE_TTL_SECONDS', 'soon'], ['LEASE_TTL_SECONDS', '0.0009'], ['LEASE_MAX_SECONDS', '1e-9'], ['USAGE_WINDOW_HOURS', '-1'], ['USAGE_WINDOW_HOURS', '1e-10'], ['ON_EXHAUSTED', 'panic'], ['LOG_LEVEL', 'loud'], ['DATABASE_URL', 'mysql://x'],
    ['LEASE_MAX_SECONDS', '86401'], ['MAX_WAIT_SECONDS', '301'], ['COOLDOWN_MAX_SECONDS', '0'], ['COOLDOWN_MAX_SECONDS', '604801'],
    ['USER_QUOTA', '-1'], ['USER_QUOTA', '1.5']] as const) {
    test(`${env}=${value} is refused with a line naming ${env}`, () => {
      assert.throws(() => loadConfig({ [env]: value }), (err: unknown) => err instanceof ConfigError && err.message.startsWith(env))
    })
  }

  test('v0.2 settings: LEASE_MAX_SECONDS, MAX_WAIT_SECONDS, COOLDOWN_MAX_SECONDS, USER_QUOTA', () => {
    const c = loadConfig({ LEASE_TTL_SECONDS: '30', LEASE_MAX_SECONDS: '3600', MAX_WAIT_SECONDS: '0', COOLDOWN_MAX_SECONDS: '1.5', USER_QUOTA: '0' })
    assert.equal(c.leaseMaxSeconds, 3600)
    assert.equal(c.maxWaitSeconds, 0)
    assert.equal(c.cooldownMaxSeconds, 1.5)
    // The longest cooldown is 1 s to 7 days.
    for (const bad of ['0.5', '0', '604801']) {
      assert.throws(() => loadConfig({ COOLDOWN_MAX_SECONDS: bad }), (err: unknown) => err instanceof ConfigError && err.message.startsWith('COOLDOWN_MAX_SECONDS'))
    }
    assert.equal(c.userQuota, 0)
    assert.equal(loadConfig({ LEASE_TTL_SECONDS: '86400' }).leaseTtlSeconds, 86400)
  })

  test('LEASE_MAX_SECONDS below LEASE_TTL_SECONDS is refused with a line naming LEASE_MAX_SECONDS', () => {
    assert.throws(() => loadConfig({ LEASE_TTL_SECONDS: '300', LEASE_MAX_SECONDS: '60' }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith('LEASE_MAX_SECONDS') && /LEASE_TTL_SECONDS \(300\)/.test(err.message))
    assert.throws(() => loadConfig({ LEASE_MAX_SECONDS: '60' }, { 'lease-ttl-seconds': '300' }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith('LEASE_MAX_SECONDS'))
  })

  test('a database that cannot be used stops `serve` and `migrate` with one line naming DATABASE_URL, never its password', () => {
    const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
    for (const command of ['serve', 'migrate']) {
      const env = { ...process.env, DATABASE_URL: 'postgres://postgres:hunter2@127.0.0.1:1/nowhere', PORT: '0', LOG_LEVEL: 'silent' }
      const run = spawnSync(process.execPath, ['--import', 'tsx', main, command], { env, encoding: 'utf8' })
      assert.equal(run.status, 1, run.stderr)
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr)
      assert.match(run.stderr, /^token-pool: cannot use the database at 127\.0\.0\.1:1\/nowhere \(DATABASE_URL\): .*ECONNREFUSED/)
      assert.doesNotMatch(run.stderr, /hunter2/)
    }
  })

  test('a bad value stops `token-pool serve` with one line and a non-zero exit', () => {
    const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
    const run = spawnSync(process.execPath, ['--import', 'tsx', main, 'serve'], { env: { ...process.env, POOL_SIZE: 'many' }, encoding: 'utf8' })
    assert.equal(run.status, 2)
    assert.equal(run.stderr.trim().split('\n').length, 1)
    assert.match(run.stderr, /POOL_SIZE/)
  })
})
