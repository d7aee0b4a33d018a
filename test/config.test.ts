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
      usageWindowHours: 24,
      onExhausted: 'evict_oldest',
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

  for (const [env, value] of [['POOL_SIZE', '0'], ['POOL_SIZE', '1.5'], ['PORT', '70000'], ['LEASE_TTL_SECONDS', '0'], ['LEASE_TTL_SECONDS', '121'],
    ['LEASE_TTL_SECONDS', 'soon'], ['USAGE_WINDOW_HOURS', '-1'], ['ON_EXHAUSTED', 'panic'], ['LOG_LEVEL', 'loud'], ['DATABASE_URL', 'mysql://x']] as const) {
    test(`${env}=${value} is refused with a line naming ${env}`, () => {
      assert.throws(() => loadConfig({ [env]: value }), (err: unknown) => err instanceof ConfigError && err.message.startsWith(env))
    })
  }

  test('a bad value stops `token-pool serve` with one line and a non-zero exit', () => {
    const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
    const run = spawnSync(process.execPath, ['--import', 'tsx', main, 'serve'], { env: { ...process.env, POOL_SIZE: 'many' }, encoding: 'utf8' })
    assert.equal(run.status, 2)
    assert.equal(run.stderr.trim().split('\n').length, 1)
    assert.match(run.stderr, /POOL_SIZE/)
  })
})
