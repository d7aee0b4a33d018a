import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

// The page's own module, plain JS as the browser loads it (a computed specifier: the project compiles without allowJs).
const MODEL = new URL('../../web/js/model.js', import.meta.url).href
const { PoolModel } = await import(MODEL) as { PoolModel: new () => any }

const A = '00000000-0000-4000-8000-00000000000a'
const B = '00000000-0000-4000-8000-00000000000b'
const U1 = '11111111-1111-4111-8111-111111111111'
const U2 = '22222222-2222-4222-8222-222222222222'
const T0 = Date.parse('2026-11-23T10:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()

const meta = { window_started_at: iso(T0 - 3600_000), window_resets_at: iso(T0 + 3600_000) }
const free = (id: string, usage = 0) => ({ id, status: 'available', current_user_id: null, started_at: null, expires_at: null, usage_count: usage })
const held = (id: string, user: string, start: number, usage: number) =>
  ({ id, status: 'active', current_user_id: user, started_at: iso(start), expires_at: iso(start + 120_000), usage_count: usage })
const allocated = (tokenId: string, user: string, start: number) =>
  ({ token_id: tokenId, user_id: user, lease_id: 1, started_at: iso(start), expires_at: iso(start + 120_000), expires_in_seconds: 120, evicted_user_id: null })
const ended = (tokenId: string, user: string, start: number, reason = 'released') =>
  ({ token_id: tokenId, user_id: user, started_at: iso(start), released_at: iso(start + 5000), release_reason: reason })

function pool (tokens = [free(A), free(B)]) {
  const m = new PoolModel()
  m.load(tokens, meta)
  m.loadStats({ allocations_in_window: 0, window_started_at: meta.window_started_at, window_resets_at: meta.window_resets_at })
  return m
}

describe('dashboard model (web/js/model.js)', () => {
  test('an allocation marks the token, counts one use, and is applied once however often it arrives', () => {
    const m = pool()
    assert.equal(m.applyAllocated(allocated(A, U1, T0)).id, A)
    assert.equal(m.applyAllocated(allocated(A, U1, T0)), null)
    const a = m.byId.get(A)
    assert.deepEqual([a.status, a.user, a.usage, m.allocationsInWindow], ['active', U1, 1, 1])
    assert.deepEqual(m.summary(), { total: 2, active: 1, available: 1, min: 0, max: 1 })
    assert.deepEqual(m.distribution(), [[0, 1], [1, 1]])
  })

  test('a release ends only the lease it names: a late one never frees the next holder', () => {
    const m = pool()
    m.applyAllocated(allocated(A, U1, T0))
    m.applyAllocated(allocated(A, U2, T0 + 10_000)) // U1 evicted, U2 holds A now
    assert.equal(m.applyEnded(ended(A, U1, T0, 'evicted')), null)
    assert.equal(m.byId.get(A).user, U2)
    assert.equal(m.applyEnded(ended(A, U2, T0 + 10_000)).status, 'available')
    assert.equal(m.applyAllocated(allocated(A, U1, T0)), null, 'an older lease does not come back')
  })

  test('events replayed over a fresh snapshot are not counted twice', () => {
    const m = pool()
    // The snapshot already holds U1's lease on A (and its use); the event that announced it is replayed.
    m.load([held(A, U1, T0, 1), free(B)], meta)
    assert.equal(m.applyAllocated(allocated(A, U1, T0)), null)
    assert.equal(m.byId.get(A).usage, 1)
    // A lease the page saw end stays ended after a snapshot that shows the token free.
    m.applyEnded(ended(A, U1, T0))
    m.load([free(A, 1), free(B)], meta)
    assert.equal(m.applyAllocated(allocated(A, U1, T0)), null)
    assert.equal(m.byId.get(A).status, 'available')
  })

  test('leases end at their own expires_at, with no event', () => {
    const m = pool()
    m.applyAllocated(allocated(A, U1, T0))
    m.applyAllocated(allocated(B, U2, T0 + 60_000))
    assert.deepEqual(m.expire(T0 + 119_999), [])
    assert.deepEqual(m.expire(T0 + 120_000).map((t: { id: string }) => t.id), [A])
    assert.equal(m.byId.get(B).status, 'active')
  })

  test('an event about a token the page does not know asks for a re-sync', () => {
    const m = pool()
    assert.equal(m.applyAllocated(allocated('00000000-0000-4000-8000-0000000000ff', U1, T0)), undefined)
    const version = m.layoutVersion
    m.load([free(A), free(B)], meta)
    assert.equal(m.layoutVersion, version, 'same tokens: the grid is kept')
    m.load([free(A), free(B), free('00000000-0000-4000-8000-0000000000ff')], meta)
    assert.equal(m.layoutVersion, version + 1)
  })
})
