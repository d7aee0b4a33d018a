import { simulate } from '../src/cli/simulate.js'

/**
 * The simulate case, in one process: `token-pool simulate`'s own function against the
 * bare limit, a binary min-heap of (count, random tie) with nothing else. Prints
 * {simulateMs, heapMs, note}. Usage: bench/simulate.ts <operations> <tokens>
 */
const operations = Number(process.argv[2] ?? 1_000_000)
const tokens = Number(process.argv[3] ?? 1000)

/** Least used first, random among ties: pop the top of a heap keyed on (count, tie), push it back counted. */
function heapLoop (ops: number, size: number): number[] {
  const count = new Float64Array(size)
  const tie = new Float64Array(size)
  const heap = new Int32Array(size)
  for (let i = 0; i < size; i++) { heap[i] = i; tie[i] = Math.random() }
  const less = (a: number, b: number) => count[a]! < count[b]! || (count[a] === count[b] && tie[a]! < tie[b]!)
  // Build the heap.
  for (let i = (size >> 1) - 1; i >= 0; i--) down(i)
  function down (i: number): void {
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < size && less(heap[l]!, heap[m]!)) m = l
      if (r < size && less(heap[r]!, heap[m]!)) m = r
      if (m === i) return
      const t = heap[i]!
      heap[i] = heap[m]!
      heap[m] = t
      i = m
    }
  }
  for (let k = 0; k < ops; k++) {
    const top = heap[0]!
    count[top] = count[top]! + 1
    tie[top] = Math.random()
    down(0)
  }
  return Array.from(count)
}

function time (fn: () => unknown): number {
  const t0 = performance.now()
  fn()
  return performance.now() - t0
}

// A warm-up of each, so that neither pays for the JIT alone.
heapLoop(Math.min(operations, 100_000), tokens)
simulate(Math.min(operations, 100_000), tokens, 1)
const heapMs = Math.min(time(() => heapLoop(operations, tokens)), time(() => heapLoop(operations, tokens)))
const simulateMs = Math.min(time(() => simulate(operations, tokens, 1)), time(() => simulate(operations, tokens, 1)))
process.stdout.write(JSON.stringify({ simulateMs, heapMs, note: '' }) + '\n')
