import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

// The page's own module, plain JS as the browser loads it (a computed specifier: the project compiles without allowJs).
const MODEL = new URL('../../web/js/model.js', import.meta.url).href
const { PoolModel, matches } = await import(MODEL) as { PoolModel: new () => any, matches: (t: unknown, f: unknown) => boolean }
const FEED = new URL('../../web/js/feed.js', import.meta.url).href
const { describeEvent, isRoutine } = await import(FEED) as {
  describeEvent: (type: string, data: unknown, name: (id: string) => string, time: (ms: number) => string) => { kind: string, text: string, tokenId: string | null }
  isRoutine: (type: string, data: unknown) => boolean
}

const A = '00000000-0000-4000-8000-00000000000a'
const B = '00000000-0000-4000-8000-00000000000b'
const C = '00000000-0000-4000-8000-00000000000c'
const U1 = '11111111-1111-4111-8111-111111111111'
const U2 = '22222222-2222-4222-8222-222222222222'
const T0 = Date.parse('2026-11-23T10:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()

const meta = { window_started_at: iso(T0 - 3600_000), window_resets_at: iso(T0 + 3600_000) }
// v0.2 shapes: tokens carry pool, label, status, lease_id, cooling_until, disabled_reason; leases carry lease_id.
const base = { pool: 'default', label: null as string | null, lease_id: null as number | null, cooling_until: null, disabled_reason: null }
const free = (id: string, usage = 0) => ({ ...base, id, status: 'available', current_user_id: null, started_at: null, expires_at: null, usage_count: usage })
const held = (id: string, user: string, start: number, usage: number, leaseId = start - T0 + 1) =>
  ({ ...base, id, status: 'active', current_user_id: user, lease_id: leaseId, started_at: iso(start), expires_at: iso(start + 120_000), usage_count: usage })
// lease ids grow with time here, as the service's sequence does
const allocated = (tokenId: string, user: string | null, start: number, leaseId = start - T0 + 1) =>
  ({ pool: 'default', token_id: tokenId, user_id: user, lease_id: leaseId, started_at: iso(start), expires_at: iso(start + 120_000), expires_in_seconds: 120, renewable_until: iso(start + 120_000), evicted_user_id: null })
const ended = (tokenId: string, user: string | null, start: number, reason = 'released', leaseId = start - T0 + 1) =>
  ({ pool: 'default', token_id: tokenId, lease_id: leaseId, user_id: user, started_at: iso(start), released_at: iso(start + 5000), release_reason: reason })
const health = (id: string, status: string, extra: object = {}) => ({ ...free(id), status, ...extra })

function pool (tokens: object[] = [free(A), free(B)]) {
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
    assert.deepEqual(m.summary(), { total: 2, active: 1, available: 1, cooling: 0, disabled: 0, min: 0, max: 1, leastCount: 1, markLeast: true })
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

  test('lease events are ordered by lease_id, so they work when the server hides user ids', () => {
    const m = pool()
    m.applyAllocated({ ...allocated(A, null, T0, 7), holder: 'abcdef012345' })
    assert.deepEqual([m.byId.get(A).status, m.byId.get(A).user, m.byId.get(A).holder], ['active', null, 'abcdef012345'])
    assert.equal(m.applyEnded(ended(A, null, T0, 'released', 6)), null, 'an older lease')
    assert.equal(m.applyEnded(ended(A, null, T0, 'released', 7)).status, 'available')
    assert.equal(m.applyAllocated(allocated(A, null, T0, 7)), null, 'replayed')
  })

  test('a renewal moves expires_at of the lease shown, and no other', () => {
    const m = pool()
    m.applyAllocated(allocated(A, U1, T0))
    const later = { ...allocated(A, U1, T0), expires_at: iso(T0 + 200_000) }
    assert.equal(m.applyRenewed(later).expiresAt, T0 + 200_000)
    assert.equal(m.applyRenewed(later), null)
    assert.equal(m.byId.get(A).usage, 1, 'a renewal is not a new use')
    assert.deepEqual(m.expire(T0 + 150_000), [])
  })

  test('cooling, disabled and enabled tokens: counts, and a cooldown ends by the clock at cooling_until', () => {
    const m = pool([free(A), free(B), free(C)])
    m.applyAllocated(allocated(A, U1, T0))
    // A cooldown ends the lease (released, reason cooldown) and then the token cools.
    m.applyEnded(ended(A, U1, T0, 'cooldown'))
    m.applyToken(health(A, 'cooling', { cooling_until: iso(T0 + 30_000), usage_count: 1 }))
    m.applyToken(health(B, 'disabled', { disabled_reason: 'revoked upstream' }))
    assert.deepEqual([m.byId.get(A).status, m.byId.get(A).coolingUntil], ['cooling', T0 + 30_000])
    assert.equal(m.byId.get(B).disabledReason, 'revoked upstream')
    const s = m.summary()
    assert.deepEqual([s.active, s.available, s.cooling, s.disabled], [0, 1, 1, 1])
    assert.deepEqual(m.expire(T0 + 29_999), [])
    assert.deepEqual(m.expire(T0 + 30_000).map((t: { id: string }) => t.id), [A])
    assert.equal(m.byId.get(A).status, 'available')
    m.applyToken(health(B, 'available'))
    assert.deepEqual([m.byId.get(B).status, m.byId.get(B).disabledReason], ['available', null])
    // A token view older than the lease shown (replayed over a snapshot) does not free it.
    m.applyAllocated(allocated(C, U2, T0 + 50_000))
    assert.equal(m.applyToken(health(C, 'available')), null)
    assert.equal(m.byId.get(C).status, 'active')
  })

  test('the queue: waiting as the server counts it, and the next token due to free (earliest lease end or cooldown end)', () => {
    const m = pool([held(A, U1, T0, 1), free(B), free(C)])
    assert.equal(m.waiting, 0)
    m.load([held(A, U1, T0, 1), free(B), free(C)], { ...meta, waiting: 2 })
    assert.equal(m.waiting, 2)
    m.loadStats({ allocations_in_window: 1, window_started_at: meta.window_started_at, window_resets_at: meta.window_resets_at, waiting: 3 })
    assert.equal(m.waiting, 3)
    // A's lease ends at T0 + 120 s; C cools until T0 + 60 s: C is first; B (disabled) never counts.
    m.applyToken(health(C, 'cooling', { cooling_until: iso(T0 + 60_000) }))
    m.applyToken(health(B, 'disabled', { disabled_reason: 'revoked' }))
    assert.equal(m.nextFree(T0), T0 + 60_000)
    // Once C's cooldown is behind the clock, the lease end is next; after both, nothing is due.
    assert.equal(m.nextFree(T0 + 60_000), T0 + 120_000)
    assert.equal(m.nextFree(T0 + 120_000), null)
  })

  test('the least used are marked only while they are not most of the pool', () => {
    const m = pool([free(A), free(B), free(C)])
    assert.equal(m.summary().markLeast, false, 'all three share 0')
    m.applyAllocated(allocated(A, U1, T0))
    assert.equal(m.summary().markLeast, false, 'two of three')
    m.applyAllocated(allocated(B, U2, T0 + 1000))
    assert.deepEqual([m.summary().leastCount, m.summary().markLeast], [1, true])
  })

  test('filters: by token id, user id, label or number, and leased only', () => {
    const m = pool([free(A), { ...free(B), label: 'Billing key' }, free(C)])
    m.applyAllocated(allocated(C, U1, T0))
    const ids = (f: object) => m.view(f).map((t: { id: string }) => t.id)
    assert.deepEqual(ids({}), [A, B, C])
    assert.deepEqual(ids({ text: U1.slice(0, 8) }), [C])
    assert.deepEqual(ids({ text: 'billing' }), [B])
    assert.deepEqual(ids({ text: A }), [A])
    assert.deepEqual(ids({ text: '#2' }), [B])
    assert.deepEqual(ids({ leasedOnly: true }), [C])
    assert.deepEqual(ids({ text: 'billing', leasedOnly: true }), [])
    assert.equal(matches(m.byId.get(C), { text: '  ' }), true)
  })

  test('the events feed: evictions, expiries, cooldowns and disables stand out; routine leases do not', () => {
    const name = (id: string) => (id === A ? 'Token 1' : 'Token ?')
    const time = () => '10:00:30'
    const evicted = describeEvent('released', ended(A, U1, T0, 'evicted'), name, time)
    assert.deepEqual([evicted.kind, evicted.tokenId], ['evicted', A])
    assert.match(evicted.text, /^Token 1: lease 1 of 11111111 evicted/)
    assert.equal(describeEvent('released', ended(A, U1, T0, 'expired'), name, time).kind, 'expired')
    assert.equal(describeEvent('cooling', health(A, 'cooling', { cooling_until: iso(T0) }), name, time).text, 'Token 1 cooling until 10:00:30')
    assert.equal(describeEvent('disabled', health(A, 'disabled', { disabled_reason: 'revoked' }), name, time).text, 'Token 1 disabled: revoked')
    assert.match(describeEvent('released', { ...ended(A, null, T0, 'evicted'), holder: 'abcdef012345' }, name, time).text, /holder abcdef012345/)
    assert.equal(isRoutine('allocated', allocated(A, U1, T0)), true)
    assert.equal(isRoutine('released', ended(A, U1, T0)), true)
    assert.equal(isRoutine('released', ended(A, U1, T0, 'evicted')), false)
    assert.equal(isRoutine('cooling', health(A, 'cooling')), false)
  })
})
