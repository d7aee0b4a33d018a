import { randomUUID } from 'node:crypto'
import autocannon from 'autocannon'
import { Http, type Answer } from './http.js'

/**
 * The load generator, run as its own process so that it never shares an event loop
 * with a server: `node --import tsx bench/load.ts '<LoadSpec JSON>'` prints a LoadResult.
 */
export type LoadSpec =
  | {
    kind: 'allocate'
    /** one URL per server process; connections are shared between them */
    urls: string[]
    connections: number
    seconds: number
    warmupSeconds: number
  }
  | { kind: 'get', urls: string[], paths: string[], connections: number, seconds: number, warmupSeconds: number }
  | { kind: 'cycle', urls: string[], workers: number, seconds: number, warmupSeconds: number }

export interface LoadResult {
  requests: number
  rps: number
  p50: number
  p99: number
  /** socket errors, timeouts and non-2xx answers */
  errors: number
  ok: number
  /** 2xx answers during the warm-up (leases too, for the committed-count check) */
  warmupOk?: number
  statusCodes: Record<string, number>
}

async function cannon (spec: Extract<LoadSpec, { kind: 'allocate' | 'get' }>, seconds: number): Promise<LoadResult> {
  const paths = spec.kind === 'get' ? spec.paths : []
  const result = await autocannon({
    // autocannon spreads connections over several URLs, though its types say one.
    url: (spec.urls.length === 1 ? spec.urls[0]! : spec.urls) as string,
    connections: spec.connections,
    duration: seconds,
    pipelining: 1,
    requests: [spec.kind === 'allocate'
      ? {
          method: 'POST',
          path: '/api/tokens/allocate',
          headers: { 'content-type': 'application/json' },
          // A new user every time: each answer is a new lease, never the idempotent return.
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ user_id: randomUUID() }) }),
        }
      : {
          method: 'GET',
          setupRequest: (req) => ({ ...req, path: paths[Math.floor(Math.random() * paths.length)]! }),
        }],
  })
  const codes: Record<string, number> = {}
  for (const [k, v] of Object.entries(result.statusCodeStats ?? {})) codes[k] = (v as { count: number }).count
  const requests = result.requests.total
  return {
    requests,
    rps: requests / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    ok: result['2xx'],
    statusCodes: codes,
  }
}

/** Allocate, then release what was granted; each worker one pair at a time. */
async function cycle (spec: Extract<LoadSpec, { kind: 'cycle' }>, seconds: number): Promise<LoadResult> {
  const { allocate, release } = bareCalls(spec.workers)
  const latencies: number[] = []
  let errors = 0
  let ok = 0
  const end = performance.now() + seconds * 1000
  const timed = async <T>(call: () => Promise<T>): Promise<T | undefined> => {
    const t0 = performance.now()
    try {
      const out = await call()
      ok++
      return out
    } catch {
      errors++
      return undefined
    } finally {
      latencies.push(performance.now() - t0)
    }
  }
  await Promise.all(Array.from({ length: spec.workers }, async (_, i) => {
    const base = spec.urls[i % spec.urls.length]!
    while (performance.now() < end) {
      const userId = randomUUID()
      const lease = await timed(async () => await allocate(base, userId))
      if (lease !== undefined) await timed(async () => await release(base, lease.token_id, userId))
    }
  }))
  latencies.sort((a, b) => a - b)
  const at = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 100) / 100
  return { requests: latencies.length, rps: latencies.length / seconds, p50: at(0.5), p99: at(0.99), errors, ok, statusCodes: {} }
}

/**
 * A bare keep-alive client (bench/http.ts, one socket per worker): the typed client's fetch
 * cost the load process 0.66 ms of CPU a request, more than the server spent, on the same
 * 2 cores.
 */
function bareCalls (workers: number): Calls {
  const http = new Http(workers)
  const ok = (a: Answer): { data: { token_id: string } } => {
    if (a.status !== 200) throw new Error(`HTTP ${a.status}: ${a.body}`)
    return JSON.parse(a.body) as { data: { token_id: string } }
  }
  return {
    allocate: async (base, userId) => ok(await http.post(base, '/api/tokens/allocate', { user_id: userId })).data,
    release: async (base, tokenId, userId) => ok(await http.post(base, `/api/tokens/${tokenId}/release`, { user_id: userId })),
  }
}

interface Calls {
  allocate: (base: string, userId: string) => Promise<{ token_id: string }>
  release: (base: string, tokenId: string, userId: string) => Promise<unknown>
}

async function main (): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec
  const run = spec.kind === 'cycle'
    ? async (s: number) => await cycle(spec, s)
    : async (s: number) => await cannon(spec, s)
  const warmupOk = spec.warmupSeconds > 0 ? (await run(spec.warmupSeconds)).ok : 0
  process.stdout.write(JSON.stringify({ ...await run(spec.seconds), warmupOk }) + '\n')
}

// Only ever run as a process; others import its types alone.
main().catch((err: unknown) => {
  process.stderr.write(String((err as Error).stack ?? err) + '\n')
  process.exitCode = 1
})
