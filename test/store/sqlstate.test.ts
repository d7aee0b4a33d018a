import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PoolError } from '../../src/domain/errors.js'
import { translateDbError, withRetry } from '../../src/store/sqlstate.js'

const pgError = (code: string) => Object.assign(new Error('boom'), { code })

describe('database errors become the contract\'s errors', () => {
  test('a race is retried until it settles', async () => {
    let calls = 0
    const result = await withRetry(async () => {
      calls++
      if (calls < 3) throw pgError('23P01')
      return 'ok'
    })
    assert.equal(result, 'ok')
    assert.equal(calls, 3)
  })

  test('a race that never settles is a clear 503, never a 500', async () => {
    await assert.rejects(withRetry(async () => { throw pgError('40P01') }, 2), (err: unknown) =>
      err instanceof PoolError && err.code === 'unavailable' && err.retryAfterSeconds === 1)
  })

  test('a lost connection is 503 unavailable; other failures pass through', () => {
    for (const code of ['08006', '57P01', 'ECONNREFUSED', '53300']) {
      assert.equal((translateDbError(pgError(code)) as PoolError).code, 'unavailable', code)
    }
    const other = pgError('42P01')
    assert.equal(translateDbError(other), other)
  })
})
