import assert from 'node:assert/strict'

/** The codes whose `details` say something the request did not; every other error has `details: null`. */
const WITH_DETAILS = new Set(['validation_failed', 'renewal_limit', 'pool_exhausted', 'quota_exceeded', 'rate_limited'])

/** An answer in the contract's error shape, with that status and code (and, on 422, that field). */
export function assertError (res: { statusCode: number, body: string }, status: number, code: string, field?: string): void {
  assert.equal(res.statusCode, status, `${res.statusCode} ${res.body}`)
  const body = JSON.parse(res.body) as { error: { code: string, message: unknown, details: { field?: string } | null } }
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'message'], res.body)
  assert.equal(body.error.code, code, res.body)
  assert.equal(typeof body.error.message, 'string')
  if (field !== undefined) assert.equal(body.error.details?.field, field, res.body)
  if (!WITH_DETAILS.has(code)) assert.equal(body.error.details, null, res.body)
  if (status === 422) {
    const d = body.error.details as { field: unknown, location: unknown, issues: unknown }
    assert.deepEqual(Object.keys(d).sort(), ['field', 'issues', 'location'], res.body)
    assert.ok(typeof d.field === 'string' && typeof d.location === 'string' && Array.isArray(d.issues) && d.issues.length > 0, res.body)
  }
}
