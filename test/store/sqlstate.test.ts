import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PoolError } from '../../src/domain/errors.js'
import { translateDbError, withRetry } from '../../src/store/sqlstate.js'

const pgError = (code: string, message = 'boom') => Object.assign(new Error(message), { code })

function unavailable (err: unknown): PoolError {
  const out = translateDbError(err)
  assert.ok(out instanceof PoolError, `expected a PoolError for ${String(err)}`)
  assert.equal(out.code, 'unavailable')
  assert.equal(out.status, 503)
  assert.equal(out.retryAfterSeconds, 1)
  assert.equal(out.cause, err)
  return out
}

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

  test('refused before any statement ran: 503, nothing was changed', () => {
    const refused = [
      pgError('ECONNREFUSED'), pgError('ENOTFOUND'), pgError('EAI_AGAIN'),
      pgError('3D000'), // the database does not exist (dropped, renamed)
      pgError('28P01'), pgError('28000'), // login refused
      pgError('53300'), // too many connections
      pgError('55000'), // ALTER DATABASE … ALLOW_CONNECTIONS false
      pgError('57P03'), // the server is starting up
      pgError('57014'), pgError('53100'), pgError('58030'), pgError('XX000'), pgError('25006'), // the server rolled the statement back
      new Error('timeout exceeded when trying to connect'),
      new Error('Connection terminated due to connection timeout'),
      new Error('PGlite is closed'),
      new Error('Cannot use a pool after calling end on the pool'),
    ]
    for (const err of refused) assert.match(unavailable(err).message, /nothing was changed/, String(err))
  })

  test('broken mid-statement: 503, the outcome is unknown and retrying is safe', () => {
    const broken = [
      pgError('08006'), pgError('57P01', 'terminating connection due to administrator command'),
      pgError('ECONNRESET'), pgError('EPIPE'),
      new Error('Connection terminated unexpectedly'),
      new Error('Connection terminated'),
      new Error('Query read timeout'),
    ]
    for (const err of broken) {
      const { message } = unavailable(err)
      assert.match(message, /the outcome is unknown; retrying is safe \(allocate returns the same lease, a repeated release answers 409 not_holder\)/, String(err))
      assert.doesNotMatch(message, /nothing was changed/)
      // A read changes nothing, whenever its connection broke.
      const read = translateDbError(err, true) as PoolError
      assert.equal(read.code, 'unavailable')
      assert.match(read.message, /nothing was changed/)
    }
  })

  test('a bug of ours, or an error not from the database, passes through (500)', () => {
    for (const err of [pgError('42P01'), pgError('42601'), pgError('22P02'), pgError('P0001'), pgError('23502'),
      pgError('EPERM'), pgError('FST_ERR_NOT_FOUND'), new TypeError('x is undefined'), 'a string']) {
      assert.equal(translateDbError(err), err, String(err))
    }
  })

  test('a PoolError passes through untouched', () => {
    const err = new PoolError('not_holder', 'not yours')
    assert.equal(translateDbError(err), err)
  })
})
