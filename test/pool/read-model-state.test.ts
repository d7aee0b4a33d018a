import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { parseId } from '../../src/domain/ids.js'
import { PoolState, type PoolRow, type TokenRow } from '../../src/pool/model/pool-state.js'

// The read model's counters against a recount of every token, after any mix of row
// changes and clock moves (expiries, cooldown ends, window ends, retirements).

const SEED = Number(process.env.FC_SEED ?? 20261130)
const HOUR = 3_600_000
const START = Date.UTC(2026, 10, 30)
const USER = parseId('00000000-0000-4000-8000-0000000000aa', 'user_id')
const WINDOW_HOURS = 1

const settings: PoolRow = {
  name: 'p',
  size: 0,
  lease_ttl_seconds: 60,
  lease_max_seconds: 60,
  usage_window_hours: WINDOW_HOURS,
  on_exhausted: 'reject',
  max_wait_seconds: 60,
  cooldown_max_seconds: 3600,
  user_quota: null,
  window_started_at: START,
}

type Op =
  | { kind: 'row', token: number, lease: number | null, cooling: number | null, disabled: boolean, retired: boolean, count: number, counted: number | null }
  | { kind: 'tick', ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('row' as const),
    token: fc.nat(11),
    // deadlines relative to now, in ms: past, near or far
    lease: fc.option(fc.integer({ min: -5_000, max: 120_000 })),
    cooling: fc.option(fc.integer({ min: -5_000, max: 30_000 })),
    disabled: fc.boolean(),
    retired: fc.boolean(),
    count: fc.nat(4),
    // the window its count belongs to, relative to the current one
    counted: fc.option(fc.integer({ min: -2, max: 0 })),
  }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: HOUR / 2 }) })
)

function row (i: number, now: number, o: Extract<Op, { kind: 'row' }>): TokenRow {
  const windowNow = START + Math.floor((now - START) / HOUR) * HOUR
  return {
    id: parseId(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, 'id'),
    pool: 'p',
    position: i * 10,
    label: null,
    retired: o.retired,
    disabled: o.disabled,
    disabled_reason: o.disabled ? 'x' : null,
    cooling_until: o.cooling === null ? null : now + o.cooling,
    lease_id: o.lease === null ? null : i + 1,
    user_id: o.lease === null ? null : USER,
    started_at: o.lease === null ? null : now - 1000,
    expires_at: o.lease === null ? null : now + o.lease,
    renewable_until: o.lease === null ? null : now + o.lease,
    usage_count: o.counted === null ? 0 : o.count,
    counted_window: o.counted === null ? null : windowNow + o.counted * HOUR,
  }
}

/** What the database would answer: every token looked at. */
function recount (rows: Map<number, TokenRow>, now: number) {
  const windowNow = START + Math.floor((now - START) / HOUR) * HOUR
  const visible = [...rows.values()]
    .filter((r) => !r.retired || (r.expires_at !== null && r.expires_at > now))
    .sort((a, b) => a.position - b.position)
  const status = (r: TokenRow) => r.disabled
    ? 'disabled'
    : r.cooling_until !== null && r.cooling_until > now ? 'cooling' : r.expires_at !== null && r.expires_at > now ? 'active' : 'available'
  const count = (r: TokenRow) => (r.counted_window === windowNow ? r.usage_count : 0)
  const counts = visible.map(count)
  const min = counts.length === 0 ? 0 : Math.min(...counts)
  return {
    figures: {
      total: visible.length,
      active: visible.filter((r) => status(r) === 'active').length,
      available: visible.filter((r) => status(r) === 'available').length,
      cooling: visible.filter((r) => status(r) === 'cooling').length,
      disabled: visible.filter((r) => status(r) === 'disabled').length,
      windowStartedAt: windowNow,
      windowResetsAt: windowNow + HOUR,
    },
    usage: {
      allocationsInWindow: counts.reduce((a, b) => a + b, 0),
      min,
      max: counts.length === 0 ? 0 : Math.max(...counts),
      leastUsedCount: counts.filter((c) => c === min).length,
      leastUsed: visible.filter((r) => count(r) === min).slice(0, 3).map((r) => r.id),
    },
    statuses: visible.map((r) => `${r.id} ${status(r)} ${count(r)}`),
  }
}

test('the read model\'s counters equal a recount of every token, whatever changes and whenever', () => {
  fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
    let now = START + 1000
    const rows = new Map<number, TokenRow>()
    const state = new PoolState(settings, now)
    const tokens = new Map<number, ReturnType<PoolState['put']>>()
    for (const o of ops) {
      if (o.kind === 'tick') {
        now += o.ms
        state.advance(now)
      } else {
        const r = row(o.token, now, o)
        rows.set(o.token, r)
        tokens.set(o.token, state.put(tokens.get(o.token), r))
      }
      const want = recount(rows, now)
      assert.deepEqual(state.figures(), want.figures)
      const usage = state.usage(3)
      assert.deepEqual({ ...usage, mean: undefined, leastUsed: usage.leastUsed.map((t) => t.id) }, { ...want.usage, mean: undefined })
      assert.ok(want.figures.total === 0 || Math.abs(usage.mean - want.usage.allocationsInWindow / want.figures.total) < 1e-9)
      assert.deepEqual(state.page(undefined, undefined, 100).map((t) => `${t.id} ${state.view(t)!.status} ${t.count}`), want.statuses)
    }
  }), { seed: SEED, numRuns: 300 })
})

test('pages start after the cursor and keep to one status', () => {
  const now = START + 1000
  const state = new PoolState(settings, now)
  for (let i = 0; i < 10; i++) {
    state.put(undefined, row(i, now, { kind: 'row', token: i, lease: i % 2 === 0 ? 60_000 : null, cooling: null, disabled: false, retired: false, count: 0, counted: null }))
  }
  assert.deepEqual(state.page('active', 25, 2).map((t) => t.position), [40, 60])
  assert.deepEqual(state.page(undefined, 85, 5).map((t) => t.position), [90])
})

test('a count stored for a window of another length (the setting changed) is 0, as the database reads it', () => {
  // Counted in [24 h, 48 h) of 24 h windows; the pool now has 16 h windows and is in [32 h, 48 h).
  const now = START + 35 * HOUR
  const state = new PoolState({ ...settings, usage_window_hours: 16 }, now)
  const base = row(1, now, { kind: 'row', token: 1, lease: null, cooling: null, disabled: false, retired: false, count: 3, counted: 0 })
  state.append([{ ...base, counted_window: START + 24 * HOUR }, { ...row(2, now, { kind: 'row', token: 2, lease: null, cooling: null, disabled: false, retired: false, count: 2, counted: 0 }), counted_window: START + 32 * HOUR }])
  assert.deepEqual(state.page(undefined, undefined, 10).map((t) => t.count), [0, 2])
})
