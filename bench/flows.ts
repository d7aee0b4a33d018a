import { randomUUID } from 'node:crypto'
import { outOfOrder, type Grant } from './fifo.js'
import { Http, type Answer } from './http.js'

/**
 * Hand-written load for the cases autocannon can't drive (waiting, cooldown, renewal), run
 * as its own process like bench/load.ts: `node --import tsx bench/flows.ts '<FlowSpec JSON>'`
 * prints a FlowResult. Workers loop until warm-up plus run are over; only what was sent
 * after the warm-up counts toward the rates and latencies.
 */
export type FlowSpec =
  | { kind: 'wait', urls: string[], pool: string, clients: number, waitSeconds: number, holdMs: [number, number], seconds: number, warmupSeconds: number }
  | { kind: 'cooldown', urls: string[], pool: string, workers: number, cooldownSeconds: number, seconds: number, warmupSeconds: number }
  | { kind: 'renew', urls: string[], pool: string, workers: number, seconds: number, warmupSeconds: number }
  /** this client's own limit: allocate on the ceiling route, one request at a time per worker */
  | { kind: 'ceiling', urls: string[], workers: number, seconds: number, warmupSeconds: number }

export interface FlowResult {
  /** requests sent after the warm-up, every kind */
  requests: number
  /** requests a second after the warm-up */
  requestRps: number
  /** the operations the case is about (grants, cooldowns, renewals) after the warm-up */
  operations: number
  rps: number
  /** per operation, ms; for wait, from sending allocate to holding the lease */
  p50: number
  p90: number
  p99: number
  max: number
  /** non-2xx answers, socket errors, error events, unusable answers */
  errors: number
  /** what went wrong, counted by code */
  errorCodes: Record<string, number>
  /** leases granted over the whole run, warm-up included: usages must reach it */
  leases: number
  /** wait: grants that queued first, and the FIFO check */
  queued?: number
  outOfOrder?: number
  timedOut?: number
  /** allocate answered with a lease the user already held (started before the request): left out of the FIFO check */
  existing?: number
  /** cooldown: a new lease on the token just cooled (must be 0) */
  sameToken?: number
  /** renew: a renewal answering another lease_id, or an expires_at earlier than the last (must be 0) */
  changedLease?: number
  backwards?: number
}

interface LeaseJson {
  token_id: string
  lease_id: number
  started_at: string
  expires_at: string
}

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

class Tally {
  readonly latencies: number[] = []
  readonly errorCodes: Record<string, number> = {}
  errors = 0
  requests = 0
  leases = 0
  readonly measureFrom: number
  readonly end: number

  constructor (spec: { seconds: number, warmupSeconds: number }) {
    this.measureFrom = performance.now() + spec.warmupSeconds * 1000
    this.end = this.measureFrom + spec.seconds * 1000
  }

  running (): boolean { return performance.now() < this.end }
  measured (sentAt: number): boolean { return sentAt >= this.measureFrom && sentAt < this.end }

  /** Sends one request, counts it, and parses a 2xx JSON answer's data (undefined otherwise). */
  async call<T>(op: string, send: () => Promise<Answer>): Promise<{ data?: T, answer?: Answer, sentAt: number }> {
    const sentAt = performance.now()
    if (this.measured(sentAt)) this.requests++
    let answer: Answer
    try {
      answer = await send()
    } catch (err) {
      this.fail(`${op} ${(err as NodeJS.ErrnoException).code ?? 'socket'}`)
      return { sentAt }
    }
    if (answer.status < 200 || answer.status > 299) {
      this.fail(`${op} ${errorCode(answer.body) ?? answer.status}`)
      return { answer, sentAt }
    }
    if (answer.type.includes('text/event-stream')) return { answer, sentAt }
    return { data: (JSON.parse(answer.body) as { data: T }).data, answer, sentAt }
  }

  fail (code: string): void {
    this.errors++
    this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1
  }

  result (seconds: number, operations: number): FlowResult {
    const l = [...this.latencies].sort((a, b) => a - b)
    const at = (q: number) => Math.round((l[Math.min(l.length - 1, Math.floor(q * l.length))] ?? 0) * 100) / 100
    return {
      requests: this.requests,
      requestRps: this.requests / seconds,
      operations,
      rps: operations / seconds,
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      max: Math.round((l.at(-1) ?? 0) * 100) / 100,
      errors: this.errors,
      errorCodes: this.errorCodes,
      leases: this.leases,
    }
  }
}

function errorCode (body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code
  } catch {
    return undefined
  }
}

/**
 * 200 clients over every node, each with its own user: allocate with wait_seconds asking for
 * a stream, hold the lease a few ms, release; then the FIFO check over every grant.
 */
async function wait (spec: Extract<FlowSpec, { kind: 'wait' }>): Promise<FlowResult> {
  const http = new Http(spec.clients)
  const t = new Tally(spec)
  const grants: Grant[] = []
  let queuedCount = 0
  let timedOut = 0
  let existing = 0
  await Promise.all(Array.from({ length: spec.clients }, async (_, i) => {
    const base = spec.urls[i % spec.urls.length]!
    const userId = randomUUID()
    while (t.running()) {
      let queuedAt: number | undefined
      const sentWall = Date.now()
      const { data, answer, sentAt } = await t.call<LeaseJson>('allocate', async () => await http.post(base, `/api/pools/${spec.pool}/tokens/allocate`,
        { user_id: userId, wait_seconds: spec.waitSeconds },
        { accept: 'text/event-stream', onEvent: (e) => { if (e.event === 'queued') queuedAt ??= performance.now() } }))
      let lease = data
      if (lease === undefined && answer?.status === 200) {
        const last = answer.events.at(-1)
        if (last?.event === 'allocated') lease = JSON.parse(last.data) as LeaseJson
        else if (last?.event === 'error') {
          const code = errorCode(last.data) ?? 'error_event'
          if (code === 'pool_exhausted') timedOut++
          t.fail(`allocate event ${code}`)
        } else t.fail('allocate stream without an answer')
      }
      if (lease === undefined) {
        await sleep(50)
        continue
      }
      const grantedAt = performance.now()
      const startedAt = Date.parse(lease.started_at)
      // started_at is the database's clock cut to the ms: earlier than the send, it is a lease this
      // user already held (an earlier allocate that failed yet granted), not one granted now.
      if (startedAt < sentWall) existing++
      else {
        t.leases++
        if (queuedAt !== undefined) queuedCount++
        grants.push({ sentAt, queuedAt, leaseId: lease.lease_id })
      }
      if (t.measured(sentAt)) t.latencies.push(grantedAt - sentAt)
      await sleep(spec.holdMs[0] + Math.random() * (spec.holdMs[1] - spec.holdMs[0]))
      await t.call('release', async () => await http.post(base, `/api/pools/${spec.pool}/tokens/${lease.token_id}/release`, { user_id: userId }))
    }
  }))
  http.close()
  return { ...t.result(spec.seconds, t.latencies.length), queued: queuedCount, outOfOrder: outOfOrder(grants), timedOut, existing }
}

/** Each worker holds a lease and cools its token with reallocate, going on with the new lease it gets. */
async function cooldown (spec: Extract<FlowSpec, { kind: 'cooldown' }>): Promise<FlowResult> {
  const http = new Http(spec.workers)
  const t = new Tally(spec)
  let operations = 0
  let sameToken = 0
  await Promise.all(Array.from({ length: spec.workers }, async (_, i) => {
    const base = spec.urls[i % spec.urls.length]!
    const userId = randomUUID()
    let held: LeaseJson | undefined
    while (t.running()) {
      if (held === undefined) {
        held = (await t.call<LeaseJson>('allocate', async () => await http.post(base, `/api/pools/${spec.pool}/tokens/allocate`, { user_id: userId }))).data
        if (held === undefined) await sleep(50)
        else t.leases++
        continue
      }
      const cooled: string = held.token_id
      const { data, sentAt } = await t.call<{ lease: LeaseJson | null, lease_error: { code: string } | null }>('cooldown', async () =>
        await http.post(base, `/api/pools/${spec.pool}/tokens/${cooled}/cooldown`, { user_id: userId, seconds: spec.cooldownSeconds, reallocate: true }))
      const ms = performance.now() - sentAt
      held = data?.lease ?? undefined
      if (data === undefined) continue
      if (t.measured(sentAt)) {
        operations++
        t.latencies.push(ms)
      }
      if (data.lease_error !== null) t.fail(`cooldown lease_error ${data.lease_error.code}`)
      if (held !== undefined) {
        t.leases++
        if (held.token_id === cooled) sameToken++
      }
    }
    if (held !== undefined) await http.post(base, `/api/pools/${spec.pool}/tokens/${held.token_id}/release`, { user_id: userId }).catch(() => undefined)
  }))
  http.close()
  return { ...t.result(spec.seconds, operations), sameToken }
}

/** Each worker allocates once, then renews its lease over and over. */
async function renew (spec: Extract<FlowSpec, { kind: 'renew' }>): Promise<FlowResult> {
  const http = new Http(spec.workers)
  const t = new Tally(spec)
  let operations = 0
  let changedLease = 0
  let backwards = 0
  await Promise.all(Array.from({ length: spec.workers }, async (_, i) => {
    const base = spec.urls[i % spec.urls.length]!
    const userId = randomUUID()
    let held: LeaseJson | undefined
    while (t.running()) {
      if (held === undefined) {
        held = (await t.call<LeaseJson>('allocate', async () => await http.post(base, `/api/pools/${spec.pool}/tokens/allocate`, { user_id: userId }))).data
        if (held === undefined) await sleep(50)
        else t.leases++
        continue
      }
      const { data: renewed, sentAt } = await t.call<LeaseJson>('renew', async () =>
        await http.post(base, `/api/pools/${spec.pool}/tokens/${held!.token_id}/renew`, { user_id: userId }))
      const ms = performance.now() - sentAt
      if (renewed === undefined) continue
      if (t.measured(sentAt)) {
        operations++
        t.latencies.push(ms)
      }
      if (renewed.lease_id !== held.lease_id) changedLease++
      if (Date.parse(renewed.expires_at) < Date.parse(held.expires_at)) backwards++
      held = renewed
    }
    if (held !== undefined) await http.post(base, `/api/pools/${spec.pool}/tokens/${held.token_id}/release`, { user_id: userId }).catch(() => undefined)
  }))
  http.close()
  return { ...t.result(spec.seconds, operations), changedLease, backwards }
}

/** The ceiling route driven by this client, so that its own cost shows. */
async function ceiling (spec: Extract<FlowSpec, { kind: 'ceiling' }>): Promise<FlowResult> {
  const http = new Http(spec.workers)
  const t = new Tally(spec)
  let operations = 0
  await Promise.all(Array.from({ length: spec.workers }, async (_, i) => {
    const base = spec.urls[i % spec.urls.length]!
    while (t.running()) {
      const { data, sentAt } = await t.call<LeaseJson>('allocate', async () => await http.post(base, '/api/tokens/allocate', { user_id: randomUUID() }))
      if (data !== undefined && t.measured(sentAt)) {
        operations++
        t.latencies.push(performance.now() - sentAt)
      }
    }
  }))
  http.close()
  return t.result(spec.seconds, operations)
}

async function main (): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as FlowSpec
  const out = spec.kind === 'wait'
    ? await wait(spec)
    : spec.kind === 'cooldown' ? await cooldown(spec) : spec.kind === 'renew' ? await renew(spec) : await ceiling(spec)
  process.stdout.write(JSON.stringify(out) + '\n')
}

// Only ever run as a process; others import its types alone.
main().catch((err: unknown) => {
  process.stderr.write(String((err as Error).stack ?? err) + '\n')
  process.exitCode = 1
})
