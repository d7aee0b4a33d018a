import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import type { Harness } from '../helpers/app.js'
import { build, json } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'
import { assertError } from '../helpers/errors.js'

/** Every rejected request must leave the pool exactly as it was. */
async function snapshot ({ db }: Harness) {
  return {
    usages: await db.query('SELECT * FROM usages ORDER BY id'),
    tokens: await db.query('SELECT id, usage_count, lease_id, retired FROM tokens ORDER BY position'),
  }
}

describeEachBackend('bad input gets a clear error and changes nothing', (backend) => {
  test('bodies: not JSON, not JSON typed, too large, wrong shape', async (t) => {
    const h = await build(t, backend, { adminToken: 'sesame' })
    const { app } = h
    await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    const before = await snapshot(h)
    const post = (payload: string | undefined, contentType?: string) => app.inject({
      method: 'POST', url: '/api/tokens/allocate', payload, headers: contentType === undefined ? {} : { 'content-type': contentType },
    })

    assertError(await post('{"user_id": ', 'application/json'), 400, 'invalid_json')
    assertError(await post(JSON.stringify({ user_id: randomUUID() }), 'text/plain'), 415, 'unsupported_media_type')
    assertError(await post('user_id=x', 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type')
    assertError(await post(JSON.stringify({ user_id: randomUUID(), pad: 'x'.repeat(200_000) }), 'application/json'), 413, 'payload_too_large')
    assertError(await post(undefined), 422, 'validation_failed', 'user_id')
    // No body at all counts as {} whatever Content-Type a client sends by default.
    assertError(await post(undefined, 'text/plain'), 422, 'validation_failed', 'user_id')
    assertError(await post('', 'application/x-www-form-urlencoded'), 422, 'validation_failed', 'user_id')
    assertError(await post('{}', 'application/json'), 422, 'validation_failed', 'user_id')
    assertError(await post('{"user_id":"not-a-uuid"}', 'application/json'), 422, 'validation_failed', 'user_id')
    assertError(await post('{"user_id":42}', 'application/json'), 422, 'validation_failed', 'user_id')
    assertError(await post('{"user_id":null}', 'application/json'), 422, 'validation_failed', 'user_id')
    assertError(await post(JSON.stringify({ user_id: [randomUUID()] }), 'application/json'), 422, 'validation_failed', 'user_id')
    assertError(await post(`{"user_id":"urn:uuid:${randomUUID()}"}`, 'application/json'), 422, 'validation_failed', 'user_id')
    assertError(await post('[]', 'application/json'), 422, 'validation_failed', 'body')
    assertError(await post('null', 'application/json'), 422, 'validation_failed')

    assert.deepEqual(await snapshot(h), before)
  })

  test('paths and queries: malformed ids are 422, unknown ones 404', async (t) => {
    const h = await build(t, backend)
    const { app } = h
    const lease = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })).json().data
    const before = await snapshot(h)
    const unknown = randomUUID()

    assertError(await app.inject('/api/tokens/not-a-uuid'), 422, 'validation_failed', 'token_id')
    assertError(await app.inject('/api/tokens/not-a-uuid/history'), 422, 'validation_failed', 'token_id')
    assertError(await app.inject({ method: 'POST', url: '/api/tokens/not-a-uuid/release', ...json({ user_id: lease.user_id }) }), 422, 'validation_failed', 'token_id')
    assertError(await app.inject(`/api/tokens/${unknown}`), 404, 'not_found')
    assertError(await app.inject(`/api/tokens/${unknown}/history`), 404, 'not_found')
    assertError(await app.inject({ method: 'POST', url: `/api/tokens/${unknown}/release`, ...json({ user_id: lease.user_id }) }), 404, 'not_found')
    // An integer is written in digits: what Number() would also read ("1e1", "0x10", " 10") is not one.
    for (const q of ['limit=0', 'limit=501', 'limit=abc', 'limit=1.5', 'limit=1e1', 'limit=0x10', 'limit=%2010', 'limit=', 'cursor=bogus', 'cursor=']) {
      assertError(await app.inject(`/api/tokens/${lease.token_id}/history?${q}`), 422, 'validation_failed', q.split('=')[0])
    }
    assertError(await app.inject('/api/tokens?status=leased'), 422, 'validation_failed', 'status')
    assertError(await app.inject('/api/tokens/%E0%A4%A'), 422, 'validation_failed', 'url')
    // A bad %-escape in the query string too, wherever it is: not read as text, not ignored.
    for (const q of ['limit=5&x=%ZZ', 'status=%ZZ', 'limit=%E0%A4', '%']) {
      const res = await app.inject(`/api/tokens?${q}`)
      assertError(res, 422, 'validation_failed', 'url')
      assert.equal(res.json().error.details.location, 'querystring')
      assert.equal(res.headers['x-content-type-options'], 'nosniff', 'with the security headers of every answer')
    }
    assert.equal((await app.inject('/api/tokens?status=available&limit=%31')).statusCode, 200, 'a good escape is read')
    assertError(await app.inject(`/api/pools/${'a'.repeat(600)}`), 422, 'validation_failed')
    assertError(await app.inject('/api/nothing-here'), 404, 'not_found')
    assertError(await app.inject({ method: 'DELETE', url: '/api/nothing-here' }), 404, 'not_found')
    const wrongMethod = await app.inject({ method: 'DELETE', url: '/api/tokens' })
    assertError(wrongMethod, 405, 'method_not_allowed')
    assert.equal(wrongMethod.headers.allow, 'GET')
    assertError(await app.inject('/api/pools/Bad'), 422, 'validation_failed', 'pool')
    assertError(await app.inject('/api/pools/nope'), 404, 'not_found')
    assertError(await app.inject(`/api/pools/nope/tokens/${lease.token_id}`), 404, 'not_found')
    assertError(await app.inject('/api/pools/default/tokens?limit=0'), 422, 'validation_failed', 'limit')
    assertError(await app.inject('/api/pools/default/tokens?limit=10001'), 422, 'validation_failed', 'limit')
    assertError(await app.inject('/api/pools/default/tokens?cursor=bogus'), 422, 'validation_failed', 'cursor')
    assertError(await app.inject('/api/stats?least_used_limit=0'), 422, 'validation_failed', 'least_used_limit')

    assert.deepEqual(await snapshot(h), before)
  })

  test('release by someone who does not hold the token is 409 not_holder', async (t) => {
    const h = await build(t, backend)
    const { app } = h
    const lease = (await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })).json().data
    const before = await snapshot(h)
    assertError(await app.inject({ method: 'POST', url: `/api/tokens/${lease.token_id}/release`, ...json({ user_id: randomUUID() }) }), 409, 'not_holder')
    assert.deepEqual(await snapshot(h), before)
  })

  test('clear needs the admin token when one is set (401 otherwise)', async (t) => {
    const h = await build(t, backend, { adminToken: 'sesame' })
    const { app } = h
    await app.inject({ method: 'POST', url: '/api/tokens/allocate', ...json({ user_id: randomUUID() }) })
    const before = await snapshot(h)
    assertError(await app.inject({ method: 'POST', url: '/api/tokens/clear' }), 401, 'unauthorized')
    assertError(await app.inject({ method: 'POST', url: '/api/tokens/clear', headers: { authorization: 'Bearer wrong' } }), 401, 'unauthorized')
    assertError(await app.inject({ method: 'POST', url: '/api/tokens/clear', headers: { authorization: 'sesame' } }), 401, 'unauthorized')
    assertError(await app.inject({ method: 'POST', url: '/api/tokens/clear', headers: { authorization: 'Bearer Sesame' } }), 401, 'unauthorized')
    assert.deepEqual(await snapshot(h), before)
    const ok = await app.inject({ method: 'POST', url: '/api/tokens/clear', headers: { authorization: 'bearer sesame' } })
    assert.equal(ok.statusCode, 200)
    assert.deepEqual(ok.json(), { data: { cleared_tokens: 1 } })
  })

  test('an unexpected failure is a 500 in the contract shape, without internals', async (t) => {
    const h = await build(t, backend)
    // A bug of ours in the database (a RAISE, as a broken function would give): 500, never a 503.
    await h.db.query(`CREATE OR REPLACE FUNCTION tp_pool_counts(p_pool text, p_now timestamptz)
      RETURNS TABLE (total integer, active integer, available integer, cooling integer, disabled integer)
      LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'tp_tokens: SELECT failed at line 3'; END $$`)
    // and a column the read model's catch-up reads, renamed (as a half-applied migration would)
    await h.db.query('ALTER TABLE waiters RENAME COLUMN alive_until TO alive_until_was')
    for (const url of ['/api/stats', '/api/pools', '/api/pools/default', '/api/tokens?limit=5']) {
      const res = await h.app.inject(url)
      assertError(res, 500, 'internal_error')
      assert.doesNotMatch(res.body, /tp_tokens|SELECT|line 3|alive_until|at .*\.ts/)
    }
  })
})
