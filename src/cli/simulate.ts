import { randomInt } from 'node:crypto'
import { createInterface } from 'node:readline/promises'
import { LeastUsedSelector, seededRng } from '../domain/selection.js'
import { parseCommandLine, UsageError, usageLine } from './args.js'

const PROMPT = 'Enter number of operations to simulate: '
const MAX_OPERATIONS = 1_000_000_000
const MAX_TOKENS = 1_000_000

const HELP = `Usage: token-pool simulate [operations] [--tokens 1000] [--seed N] [--json]

Runs that many allocations through the pool's selection rule (least used first,
uniformly random among ties) on an in-memory pool, then prints every token's
usage count, the least-used tokens and a summary. Asks for the number when it
is not given.

Options:
  --tokens N   size of the pool (default 1000)
  --seed N     seed of the random tie-break, to repeat a run exactly
  --json       print the result as JSON
`

export interface SimulationResult {
  operations: number
  tokens: number
  seed: number
  /** usage count of token i+1 at index i */
  counts: number[]
  /** 1-based numbers of the tokens whose count is the lowest */
  leastUsed: number[]
  summary: { min: number, max: number, mean: number, spread: number }
}

/** Runs the simulation; onProgress gets the fraction done now and then. Pure apart from the callback. */
export function simulate (operations: number, tokens: number, seed: number, onProgress?: (done: number) => void): SimulationResult {
  const selector = new LeastUsedSelector(tokens, seededRng(seed))
  // Chunks keep the progress callback off the hot loop.
  const chunk = Math.max(1, Math.ceil(operations / 100))
  for (let done = 0; done < operations;) {
    const until = Math.min(operations, done + chunk)
    for (; done < until; done++) selector.use()
    onProgress?.(done / operations)
  }
  const counts = [...selector.allCounts()]
  let min = Infinity
  let max = -Infinity
  for (const c of counts) {
    if (c < min) min = c
    if (c > max) max = c
  }
  if (tokens === 0) min = max = 0
  return {
    operations,
    tokens,
    seed,
    counts,
    leastUsed: selector.leastUsed().map((i) => i + 1),
    summary: { min, max, mean: tokens === 0 ? 0 : operations / tokens, spread: max - min },
  }
}

const uses = (n: number) => `${n} ${n === 1 ? 'use' : 'uses'}`

/** The report in the contract's format, as lines. */
export function formatReport (r: SimulationResult): string[] {
  const lines = [`Starting simulation with ${r.operations} operations...`, '', 'Token Usage Statistics:']
  r.counts.forEach((c, i) => lines.push(`Token ${i + 1}: ${uses(c)}`))
  lines.push('Least Used Token(s):')
  for (const t of r.leastUsed) lines.push(`Token ${t} (${uses(r.counts[t - 1]!)})`)
  const s = r.summary
  lines.push('', `Summary: ${r.operations} operations over ${r.tokens} tokens (seed ${r.seed}): ` +
    `min ${s.min}, max ${s.max}, mean ${round(s.mean)}, spread ${s.spread}`)
  return lines
}

const round = (x: number) => Math.round(x * 100) / 100

/** A whole number in [min, max], or a UsageError naming what was wrong. */
export function parseCount (raw: string, what: string, min: number, max: number): number {
  const text = raw.trim().replaceAll('_', '')
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a whole number, got "${raw.trim()}"`)
  const n = Number(text)
  if (n < min || n > max) throw new UsageError(`${what} must be between ${min} and ${max}, got ${text}`)
  return n
}

/** Asks on `output`, reads one line from stdin (a terminal or a pipe). */
async function ask (output: NodeJS.WriteStream): Promise<string> {
  const rl = createInterface({ input: process.stdin, output, terminal: process.stdin.isTTY })
  try {
    const closed = new Promise<never>((_resolve, reject) => {
      rl.once('close', () => { reject(new UsageError('no number of operations given: stdin is closed')) })
    })
    const answer = await Promise.race([rl.question(PROMPT), closed])
    // A piped answer is not echoed: end the prompt's line ourselves.
    if (process.stdin.isTTY !== true) output.write('\n')
    return answer
  } finally {
    rl.close()
  }
}

/** A progress bar on stderr, redrawn only when the shown percentage changes. */
function progressBar (stream: NodeJS.WriteStream): { update: (f: number) => void, done: () => void } {
  let shown = -1
  return {
    update (f) {
      const pct = Math.floor(f * 100)
      if (pct === shown) return
      shown = pct
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 20))
      const full = Math.round(f * width)
      stream.write(`\r[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(pct).padStart(3)}%`)
    },
    done () { if (shown >= 0) stream.write('\r\x1b[2K') },
  }
}

/** `token-pool simulate`: a bad argument or answer prints one line and exits with 2. */
export async function simulateCommand (argv: string[]): Promise<void> {
  try {
    await run(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(usageLine('simulate', err))
    process.exitCode = 2
  }
}

async function run (argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine({
    args: argv,
    allowPositionals: true,
    options: {
      tokens: { type: 'string', default: '1000' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  if (positionals.length > 1) throw new UsageError(`simulate takes one number of operations, got ${positionals.length} arguments`)
  const tokens = parseCount(values.tokens, '--tokens', 1, MAX_TOKENS)
  const seed = values.seed === undefined ? randomInt(0, 2 ** 31) : parseCount(values.seed, '--seed', 0, 2 ** 32 - 1)
  const operations = parseCount(positionals[0] ?? await ask(values.json ? process.stderr : process.stdout), 'The number of operations', 0, MAX_OPERATIONS)

  // The bar goes to stderr, and only to a terminal: piped output stays clean.
  const bar = process.stderr.isTTY && !values.json ? progressBar(process.stderr) : undefined
  const started = performance.now()
  const result = simulate(operations, tokens, seed, bar?.update)
  bar?.done()
  if (process.stderr.isTTY) process.stderr.write(`Simulated ${operations} operations in ${Math.round(performance.now() - started)} ms\n`)

  // A reader that goes away early (| head) is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE') throw err })
  if (values.json) {
    const { leastUsed, ...rest } = result
    process.stdout.write(JSON.stringify({ ...rest, least_used: leastUsed }) + '\n')
  } else {
    process.stdout.write(formatReport(result).join('\n') + '\n')
  }
}
