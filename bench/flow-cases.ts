import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { freshPostgres, integrity, type Integrity } from './db.js'
import type { FlowResult, FlowSpec } from './flows.js'
import type { Row, RunOptions } from './harness.js'
import { startServer, type Server } from './servers.js'

/**
 * The cases of waiting, cooldown and renewal: real `token-pool serve` processes on
 * PostgreSQL, a pool made through the admin API, and the hand-written load of bench/flows.ts.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)

/** Runs bench/flows.ts as a process of its own and reads its one-line JSON answer. */
async function flow (spec: FlowSpec, graceSeconds = 60): Promise<FlowResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/flows.ts', JSON.stringify(spec)], {
    cwd: ROOT, maxBuffer: 1 << 20, timeout: (spec.seconds + spec.warmupSeconds + graceSeconds) * 1000,
  })
  return JSON.parse(stdout.trim().split('\n').pop()!) as FlowResult
}

/** POST /api/pools from loopback: admin routes answer it without ADMIN_TOKEN. */
async function createPool (server: Server, settings: Record<string, unknown>): Promise<void> {
  const res = await fetch(server.url + '/api/pools', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(settings) })
  if (res.status !== 201) throw new Error(`POST /api/pools answered ${res.status}: ${await res.text()}`)
}

/** Servers on a new database, the first one making the pool before the others start. */
async function cluster (o: RunOptions, nodes: number, pool: Record<string, unknown>): Promise<{ url: string, servers: Server[] }> {
  const url = await freshPostgres('token_pool_bench')
  const servers: Server[] = []
  try {
    for (let i = 0; i < nodes; i++) {
      servers.push(await startServer({ port: o.port + i, databaseUrl: url, poolSize: 1 }))
      if (i === 0) await createPool(servers[0]!, pool)
    }
  } catch (err) {
    await Promise.all(servers.map(async (s) => await s.stop()))
    throw err
  }
  return { url, servers }
}

function row (c: string, detail: string, r: FlowResult, check: { ok: boolean, text: string }): Row {
  const codes = Object.entries(r.errorCodes).map(([k, v]) => `${k} ${v}`).join(', ')
  return {
    case: c,
    backend: 'postgres',
    detail,
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    errors: r.errors,
    answers: r.operations,
    check,
    note: `${Math.round(r.requestRps)} requests/s of every kind` + (codes === '' ? '' : `; errors: ${codes}`),
  }
}

function integrityText (i: Integrity, leases: number): { ok: boolean, text: string } {
  const ok = i.overlaps === 0 && i.doubleOpen === 0 && i.usages >= leases
  return { ok, text: `${i.overlaps} overlaps, ${i.doubleOpen} double holders, ${i.usages} usages ≥ ${leases} leases` }
}

const verdict = (parts: Array<{ ok: boolean, text: string }>) => {
  const ok = parts.every((p) => p.ok)
  return { ok, text: `${ok ? 'ok' : 'FAIL'}: ${parts.map((p) => p.text).join(', ')}` }
}

export interface WaitOptions extends RunOptions {
  nodes: number
  clients: number
  poolSize: number
}

/**
 * A pool of 10 that refuses when exhausted, and 200 clients over two nodes that queue for it
 * (wait_seconds 30, asking for the stream): grants a second, the wait, and the FIFO check.
 */
export async function wait (o: WaitOptions): Promise<Row> {
  const pool = 'bench-wait'
  const { url, servers } = await cluster(o, o.nodes, { name: pool, size: o.poolSize, on_exhausted: 'reject', lease_ttl_seconds: 60, max_wait_seconds: 60 })
  try {
    const r = await flow({
      kind: 'wait', urls: servers.map((s) => s.url), pool, clients: o.clients, waitSeconds: 30, holdMs: [5, 20], seconds: o.seconds, warmupSeconds: o.warmupSeconds,
    }, 90)
    await Promise.all(servers.map(async (s) => await s.stop()))
    const i = await integrity(url)
    const check = verdict([
      { ok: r.outOfOrder === 0, text: `${r.outOfOrder} out-of-order grants of ${r.leases} (${r.queued} queued, ${r.timedOut} timed out, ${r.existing} answers an earlier lease)` },
      { ok: true, text: `wait p90 ${r.p90} ms, max ${r.max} ms` },
      integrityText(i, r.leases),
    ])
    return row('wait', `grants/s: pool ${o.poolSize} (reject), ${o.clients} clients over ${o.nodes} processes, wait_seconds 30, hold 5–20 ms; p50/p99 = wait for the lease`, r, check)
  } finally {
    await Promise.all(servers.map(async (s) => await s.stop()))
  }
}

export interface PoolCaseOptions extends RunOptions {
  poolSize: number
}

/** 64 holders cooling their token for 0.5 s with reallocate, each going on with the new lease. */
export async function cooldown (o: PoolCaseOptions): Promise<Row> {
  const pool = 'bench-cooldown'
  const { url, servers } = await cluster(o, 1, { name: pool, size: o.poolSize, on_exhausted: 'reject' })
  try {
    const r = await flow({ kind: 'cooldown', urls: [servers[0]!.url], pool, workers: o.connections, cooldownSeconds: 0.5, seconds: o.seconds, warmupSeconds: o.warmupSeconds })
    await servers[0]!.stop()
    const i = await integrity(url)
    const check = verdict([
      { ok: r.sameToken === 0, text: `${r.sameToken} new leases on the token just cooled` },
      integrityText(i, r.leases),
    ])
    return row('cooldown', `cooldown 0.5 s + reallocate, pool ${o.poolSize.toLocaleString('en')} (reject), ${o.connections} workers`, r, check)
  } finally {
    await servers[0]!.stop()
  }
}

/** 64 holders renewing their lease over and over (TTL 60 s, cap 3600 s). */
export async function renew (o: PoolCaseOptions): Promise<Row> {
  const pool = 'bench-renew'
  const { url, servers } = await cluster(o, 1, { name: pool, size: o.poolSize, lease_ttl_seconds: 60, lease_max_seconds: 3600 })
  try {
    const r = await flow({ kind: 'renew', urls: [servers[0]!.url], pool, workers: o.connections, seconds: o.seconds, warmupSeconds: o.warmupSeconds })
    await servers[0]!.stop()
    const i = await integrity(url)
    const check = verdict([
      { ok: r.changedLease === 0, text: `${r.changedLease} renewals with another lease_id` },
      { ok: r.backwards === 0, text: `${r.backwards} expires_at going back` },
      integrityText(i, r.leases),
    ])
    return row('renew', `renew, pool ${o.poolSize.toLocaleString('en')}, TTL 60 s, cap 3600 s, ${o.connections} workers`, r, check)
  } finally {
    await servers[0]!.stop()
  }
}

/** This client against the ceiling route: how much of a hand-written case's figure is the client's own limit. */
export async function clientCeiling (o: RunOptions): Promise<Row> {
  const server = await startServer({ port: o.port, databaseUrl: 'memory://', poolSize: 1, ceiling: true })
  try {
    const r = await flow({ kind: 'ceiling', urls: [server.url], workers: o.connections, seconds: o.seconds, warmupSeconds: o.warmupSeconds })
    return { ...row('flows client', 'the ceiling route driven by bench/flows.ts (one request at a time per worker)', r, { ok: true, text: '' }), backend: '-', check: undefined }
  } finally {
    await server.stop()
  }
}
