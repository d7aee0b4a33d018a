import { execFile } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { newId } from '../src/domain/ids.js'
import { freshPglite, freshPostgres, integrity, provisionPostgres, readDatabase, type Integrity } from './db.js'
import type { LoadResult, LoadSpec } from './load.js'
import { sampleRss, startServer, type Server } from './servers.js'
import { TokenPool } from '../src/pool/pool.js'
import { openPostgres } from '../src/store/pg-db.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)

export type Backend = 'postgres' | 'pglite'

export interface Row {
  case: string
  backend: Backend | '-'
  detail: string
  rps: number
  p50: number
  p99: number
  errors: number
  /** 2xx answers counted by the load generator */
  answers: number
  /** max RSS of the (first) server during the run, MB */
  rssMb?: number
  /** the overlap check and the committed-count check, for runs that allocate */
  check?: { ok: boolean, text: string }
  /** set by the runner: this row against the ceiling of the same run */
  ratio?: number
  p99Ratio?: number
  note?: string
}

export interface RunOptions {
  seconds: number
  warmupSeconds: number
  connections: number
  /** first port of the range the bench may use */
  port: number
}

/** Runs the load generator as a process of its own and reads its one-line JSON answer. */
export async function load (spec: LoadSpec): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/load.ts', JSON.stringify(spec)], {
    cwd: ROOT, maxBuffer: 1 << 20, timeout: (spec.seconds + spec.warmupSeconds + 60) * 1000,
  })
  return JSON.parse(stdout.trim().split('\n').pop()!) as LoadResult
}

function row (c: string, backend: Row['backend'], detail: string, r: LoadResult): Row {
  return { case: c, backend, detail, rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors, answers: r.ok }
}

/** A database URL for a new, empty pool on that backend. */
async function freshDb (backend: Backend, name: string, database = 'token_pool_bench'): Promise<string> {
  return backend === 'postgres' ? await freshPostgres(database) : freshPglite(join(tmpdir(), database, name))
}

export async function ceiling (o: RunOptions, label = 'ceiling'): Promise<Row> {
  const server = await startServer({ port: o.port, databaseUrl: 'memory://', poolSize: 1, ceiling: true })
  try {
    const r = await load({ kind: 'allocate', urls: [server.url], connections: o.connections, seconds: o.seconds, warmupSeconds: o.warmupSeconds })
    return row(label, '-', 'Fastify route, same schemas, no database', r)
  } finally {
    await server.stop()
  }
}

function checkText (i: Integrity, ok: number): Row['check'] {
  const pass = i.overlaps === 0 && i.doubleOpen === 0 && i.usages >= ok
  return { ok: pass, text: `${pass ? 'ok' : 'FAIL'}: ${i.overlaps} overlaps, ${i.doubleOpen} double holders, ${i.usages} usages ≥ ${ok} answers` }
}

export interface AllocateOptions extends RunOptions {
  backend: Backend
  poolSize: number
  /** server processes sharing the database */
  nodes?: number
  label?: string
  env?: Record<string, string>
  /** the PostgreSQL database (or PGlite directory) to use; default token_pool_bench */
  database?: string
}

/**
 * POST /api/tokens/allocate with a new user every time, then the overlap check in SQL.
 * Every 2xx answer must be a committed usage: the count of usages must reach the count of answers.
 */
export async function allocate (o: AllocateOptions): Promise<Row> {
  const nodes = o.nodes ?? 1
  const url = await freshDb(o.backend, `allocate-${o.poolSize}`, o.database)
  if (o.backend === 'postgres') await provisionPostgres(url, o.poolSize)
  const servers: Server[] = []
  try {
    for (let i = 0; i < nodes; i++) servers.push(await startServer({ port: o.port + i, databaseUrl: url, poolSize: o.poolSize, env: o.env }))
    const rss = sampleRss(servers[0]!)
    const r = await load({ kind: 'allocate', urls: servers.map((s) => s.url), connections: o.connections, seconds: o.seconds, warmupSeconds: o.warmupSeconds })
    const mem = rss()
    await Promise.all(servers.map(async (s) => await s.stop()))
    const check = await integrity(url)
    return {
      ...row(o.label ?? 'allocate', o.backend, `pool ${o.poolSize.toLocaleString('en')}${nodes > 1 ? `, ${nodes} processes` : ''}`, r),
      rssMb: mem.maxMb,
      note: `RSS ${mem.firstMb} → ${mem.lastMb} MB (max ${mem.maxMb})`,
      check: checkText(check, r.ok + (r.warmupOk ?? 0)),
    }
  } finally {
    await Promise.all(servers.map(async (s) => await s.stop()))
  }
}

/**
 * The cycle's writes without HTTP: 64 workers call the service's own TokenPool (batched
 * allocations and releases, one PostgreSQL) in this process. What the database path alone
 * manages on this machine: the HTTP cycle can't beat it.
 */
export async function cycleWithoutHttp (o: RunOptions & { poolSize: number }): Promise<Row> {
  const url = await freshDb('postgres', 'cycle')
  await provisionPostgres(url, o.poolSize)
  const db = openPostgres(url)
  const pool = new TokenPool(db, { defaultPool: { size: o.poolSize } })
  await pool.start()
  let ops = 0
  let errors = 0
  const latencies: number[] = []
  const timed = async <T>(call: () => Promise<T>, counted: boolean): Promise<T | undefined> => {
    const t0 = performance.now()
    try {
      return await call()
    } catch {
      errors++
      return undefined
    } finally {
      if (counted) { ops++; latencies.push(performance.now() - t0) }
    }
  }
  const work = async (until: number, counted: boolean) => {
    await Promise.all(Array.from({ length: o.connections }, async () => {
      while (performance.now() < until) {
        const userId = newId()
        const lease = await timed(async () => await pool.allocate(userId), counted)
        if (lease !== undefined) await timed(async () => await pool.release(lease.tokenId, userId), counted)
      }
    }))
  }
  try {
    await work(performance.now() + o.warmupSeconds * 1000, false)
    await work(performance.now() + o.seconds * 1000, true)
  } finally {
    await pool.stop()
    await db.close()
  }
  latencies.sort((a, b) => a - b)
  const at = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 100) / 100
  const check = await integrity(url)
  return {
    case: 'cycle',
    backend: 'postgres',
    detail: `allocate + release without HTTP (TokenPool in one process), pool ${o.poolSize.toLocaleString('en')}, ${o.connections} workers`,
    rps: ops / o.seconds,
    p50: at(0.5),
    p99: at(0.99),
    errors,
    answers: ops,
    check: checkText(check, 0),
  }
}

/** Allocate then release, 64 workers, through the typed client. */
export async function cycle (o: RunOptions & { backend: Backend, poolSize: number }): Promise<Row> {
  const url = await freshDb(o.backend, 'cycle')
  const server = await startServer({ port: o.port, databaseUrl: url, poolSize: o.poolSize })
  try {
    const r = await load({ kind: 'cycle', urls: [server.url], workers: o.connections, seconds: o.seconds, warmupSeconds: o.warmupSeconds })
    await server.stop()
    const check = await integrity(url)
    return { ...row('cycle', o.backend, `allocate + release, pool ${o.poolSize}, ${o.connections} workers`, r), check: checkText(check, 0) }
  } finally {
    await server.stop()
  }
}

export interface ReadOptions extends RunOptions {
  /** usage rows in the table; 0 is the empty history to compare with */
  rows: number
  tokens: number
}

/** GET /api/tokens/:id, /api/stats and /history on random tokens, over an empty history or `rows` usages. */
export async function read (o: ReadOptions): Promise<{ rows: Row[], loadSeconds: number | null }> {
  let url: string
  let tokenIds: string[]
  let loadSeconds: number | null = null
  if (o.rows === 0) {
    url = await freshPostgres('token_pool_bench')
    tokenIds = []
  } else {
    const data = await readDatabase(`token_pool_bench_read_${o.rows}`, o.rows, o.tokens)
    url = data.url
    tokenIds = data.tokens
    loadSeconds = data.loadSeconds
  }
  const server = await startServer({ port: o.port, databaseUrl: url, poolSize: o.tokens })
  try {
    if (tokenIds.length === 0) {
      const res = await fetch(server.url + '/api/tokens')
      tokenIds = ((await res.json()) as { data: Array<{ id: string }> }).data.map((t) => t.id)
    }
    const size = o.rows === 0 ? 'empty history' : `${o.rows.toLocaleString('en')} usages`
    const out: Row[] = []
    for (const [what, paths] of [
      ['GET /api/tokens/:id', tokenIds.map((id) => `/api/tokens/${id}`)],
      ['GET /api/stats', ['/api/stats']],
      ['GET /api/tokens/:id/history', tokenIds.map((id) => `/api/tokens/${id}/history`)],
    ] as const) {
      const r = await load({
        kind: 'get',
        urls: [server.url],
        paths: [...paths],
        connections: o.connections,
        seconds: o.seconds,
        warmupSeconds: o.warmupSeconds,
      })
      out.push(row('read', 'postgres', `${what}, ${size}`, r))
    }
    return { rows: out, loadSeconds }
  } finally {
    await server.stop()
  }
}

/** Reads of a pool of `tokens` tokens: its stats and a page of its list (the v0.1 endpoints timed out at 1,000,000). */
export async function big (o: RunOptions & { tokens: number }): Promise<Row[]> {
  const url = await freshPostgres('token_pool_bench')
  await provisionPostgres(url, o.tokens)
  const server = await startServer({ port: o.port, databaseUrl: url, poolSize: o.tokens })
  try {
    const out: Row[] = []
    const size = `pool ${o.tokens.toLocaleString('en')}`
    for (const [what, path] of [
      ['GET /api/pools/default/stats', '/api/pools/default/stats'],
      ['GET /api/pools/default/tokens?limit=100', '/api/pools/default/tokens?limit=100'],
    ] as const) {
      // As many connections as the ceiling: with 8 (the v0.1 endpoints timed out with more),
      // a read waits one catch-up round trip and the ratio measured that round trip.
      const r = await load({ kind: 'get', urls: [server.url], paths: [path], connections: o.connections, seconds: o.seconds, warmupSeconds: o.warmupSeconds })
      out.push(row('big', 'postgres', `${what}, ${size}, ${o.connections} connections`, r))
    }
    // The whole pool in one streamed answer: its time and size, and the server's memory meanwhile.
    const stopSampling = sampleRss(server, 100)
    const t0 = performance.now()
    const res = await fetch(server.url + '/api/pools/default/tokens')
    const body = await res.text()
    const ms = performance.now() - t0
    const rss = stopSampling()
    out.push({
      case: 'big',
      backend: 'postgres',
      detail: `GET /api/pools/default/tokens (streamed, whole pool), ${size}`,
      rps: 1000 / ms,
      p50: ms,
      p99: ms,
      errors: res.ok ? 0 : 1,
      answers: 1,
      rssMb: Math.round(rss.maxMb),
      note: `${(body.length / 1e6).toFixed(0)} MB in ${(ms / 1000).toFixed(1)} s, ${(JSON.parse(body) as { data: unknown[] }).data.length} tokens; server RSS ${Math.round(rss.firstMb)} → max ${Math.round(rss.maxMb)} MB`,
    })
    return out
  } finally {
    await server.stop()
  }
}

export interface SimulateResult {
  /** ms for `token-pool simulate` */
  simulateMs: number
  /** ms for the bare min-heap loop */
  heapMs: number
  note: string
}

/** `token-pool simulate N --tokens T` against a bare min-heap loop, both in one process. */
export async function simulate (operations: number, tokens: number): Promise<SimulateResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/simulate.ts', String(operations), String(tokens)], {
    cwd: ROOT, maxBuffer: 1 << 20, timeout: 300_000,
  })
  return JSON.parse(stdout.trim().split('\n').pop()!) as SimulateResult
}
