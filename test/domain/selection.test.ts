import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { LeastUsedSelector, seededRng } from '../../src/domain/selection.js'

/** The lowest count among available tokens, computed the slow, obvious way. */
function lowestAvailable (s: LeastUsedSelector): number {
  let min = Infinity
  for (let i = 0; i < s.size; i++) if (s.isAvailable(i)) min = Math.min(min, s.countOf(i))
  return min
}

// 99.9th percentile of chi-square: a fair tie-break fails this 1 time in 1000, and the seed is fixed.
const CHI_SQUARE_999: Record<number, number> = { 4: 18.467, 9: 27.877, 19: 43.82 }

function chiSquare (observed: number[], expected: number): number {
  return observed.reduce((sum, o) => sum + (o - expected) ** 2 / expected, 0)
}

describe('LeastUsedSelector', () => {
  test('a fresh pool uses every token once before any token twice', () => {
    const s = new LeastUsedSelector(50, seededRng(1))
    const first = new Set<number>()
    for (let i = 0; i < 50; i++) first.add(s.use())
    assert.equal(first.size, 50)
    assert.deepEqual(s.allCounts(), new Array(50).fill(1))
    s.use()
    assert.equal(s.leastUsed().length, 49)
  })

  test('starting counts are honoured: the only least-used token is picked', () => {
    const s = new LeastUsedSelector(4, seededRng(2), [3, 1, 0, 2])
    assert.equal(s.use(), 2)
    // Now tokens 1 and 2 are tied at 1: each is used once before either is used again.
    assert.deepEqual(new Set([s.use(), s.use()]), new Set([1, 2]))
    assert.deepEqual(s.allCounts(), [3, 2, 2, 2])
  })

  test('held tokens are never picked; a released one comes back with its count', () => {
    const s = new LeastUsedSelector(3, seededRng(3))
    const a = s.allocate()
    const b = s.allocate()
    const c = s.allocate()
    assert.deepEqual(new Set([a, b, c]), new Set([0, 1, 2]))
    assert.equal(s.allocate(), -1)
    assert.equal(s.peek(), -1)
    s.release(b)
    assert.equal(s.allocate(), b)
    assert.equal(s.countOf(b), 2)
    s.release(a)
    assert.throws(() => { s.release(a) }, /not held/)
  })

  test('releasing a token that is not held is refused', () => {
    const s = new LeastUsedSelector(2, seededRng(4))
    assert.throws(() => { s.release(0) }, /not held/)
  })

  test('rejects nonsense sizes and counts', () => {
    assert.throws(() => new LeastUsedSelector(-1), RangeError)
    assert.throws(() => new LeastUsedSelector(2, Math.random, [1]), RangeError)
    assert.throws(() => new LeastUsedSelector(2, Math.random, [1, -1]), RangeError)
  })

  test('an RNG that returns values just below 1 stays in range', () => {
    const s = new LeastUsedSelector(7, () => 0.9999999999999999)
    for (let i = 0; i < 100; i++) assert.ok(s.use() >= 0)
  })

  test('the same seed gives the same picks', () => {
    const run = (seed: number) => {
      const s = new LeastUsedSelector(100, seededRng(seed))
      return Array.from({ length: 1000 }, () => s.use())
    }
    assert.deepEqual(run(42), run(42))
    assert.notDeepEqual(run(42), run(43))
  })

  test('property: every pick is a least-used available token, whatever the mix of operations', () => {
    const op = fc.oneof(
      fc.constant({ kind: 'use' as const }),
      fc.constant({ kind: 'allocate' as const }),
      fc.nat().map((n) => ({ kind: 'release' as const, n }))
    )
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 30 }),
      fc.array(fc.nat({ max: 5 }), { maxLength: 30 }),
      fc.integer(),
      fc.array(op, { maxLength: 300 }),
      (size, startCounts, seed, ops) => {
        const counts = Array.from({ length: size }, (_, i) => startCounts[i] ?? 0)
        const s = new LeastUsedSelector(size, seededRng(seed), counts)
        const held: number[] = []
        for (const o of ops) {
          if (o.kind === 'release') {
            if (held.length === 0) continue
            const [token] = held.splice(o.n % held.length, 1)
            s.release(token!)
            continue
          }
          const expectedCount = lowestAvailable(s)
          const before = [...s.allCounts()]
          const token = o.kind === 'use' ? s.use() : s.allocate()
          if (expectedCount === Infinity) {
            assert.equal(token, -1)
            continue
          }
          assert.equal(before[token], expectedCount, 'picked a token that was not least used')
          assert.equal(s.countOf(token), expectedCount + 1)
          if (o.kind === 'allocate') held.push(token)
        }
        const total = s.allCounts().reduce((a, b) => a + b, 0)
        const started = counts.reduce((a, b) => a + b, 0)
        const picks = ops.filter((o) => o.kind !== 'release').length
        assert.ok(total - started <= picks)
      }
    ), { seed: 20261123, numRuns: 300 })
  })

  test('property: after n uses the spread of counts is at most 1', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 200 }), fc.nat({ max: 2000 }), fc.integer(), (size, n, seed) => {
      const s = new LeastUsedSelector(size, seededRng(seed))
      for (let i = 0; i < n; i++) s.use()
      const counts = s.allCounts()
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1)
      assert.equal(counts.reduce((a, b) => a + b, 0), n)
    }), { seed: 7, numRuns: 200 })
  })

  for (const size of [5, 10, 20]) {
    test(`ties are broken uniformly: chi-square over ${size} tied tokens stays under the 99.9% bound`, () => {
      const rng = seededRng(size * 1000 + 1)
      const trials = 20_000
      const hits = new Array<number>(size).fill(0)
      for (let i = 0; i < trials; i++) {
        const s = new LeastUsedSelector(size, rng)
        hits[s.use()]!++
      }
      const stat = chiSquare(hits, trials / size)
      assert.ok(stat < CHI_SQUARE_999[size - 1]!, `chi-square ${stat.toFixed(2)} for ${hits.join(',')}`)
    })
  }

  test('ties are uniform in the middle of a run too, not only on a fresh pool', () => {
    // 10 tokens, 3 of them ahead by one: the next pick must spread evenly over the 7 others.
    const rng = seededRng(99)
    const hits = new Array<number>(10).fill(0)
    const trials = 14_000
    for (let i = 0; i < trials; i++) {
      const s = new LeastUsedSelector(10, rng, [1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
      hits[s.use()]!++
    }
    assert.deepEqual([hits[0], hits[2], hits[5]], [0, 0, 0])
    const tied = hits.filter((_, i) => ![0, 2, 5].includes(i))
    // 6 degrees of freedom, 99.9%: 22.458
    assert.ok(chiSquare(tied, trials / 7) < 22.458, `chi-square over ${tied.join(',')}`)
  })
})
