import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { freshPostgres, integrity, provisionPostgres } from './db.js'
import type { Row, RunOptions } from './harness.js'

const run = promisify(execFile)
const SCRIPTS = fileURLToPath(new URL('./pgbench/', import.meta.url))

export interface PgbenchRun {
  script: 'allocate' | 'cycle'
  /** users a batch (the scripts' :batch) */
  batch: number
  clients: number
  /** for this long, or this many scripts per client */
  length: { seconds: number } | { transactions: number }
}

/** Runs one of bench/pgbench/'s scripts on `url`; pgbench's figures, or an error when it printed none. */
export async function pgbench (url: string, r: PgbenchRun): Promise<{ tps: number, latencyMs: number, failed: number }> {
  const length = 'seconds' in r.length ? ['-T', String(r.length.seconds)] : ['-t', String(r.length.transactions)]
  const args = ['-n', '-c', String(r.clients), '-j', '2', ...length, '-D', `batch=${r.batch}`, '-f', `${SCRIPTS}${r.script}.sql`, url]
  const { stdout } = await run('pgbench', args, { timeout: 600_000 })
  const tps = Number(/^tps = ([\d.]+)/m.exec(stdout)?.[1] ?? NaN)
  if (Number.isNaN(tps)) throw new Error(`pgbench printed no tps:\n${stdout}`)
  return {
    tps,
    latencyMs: Number(/^latency average = ([\d.]+) ms/m.exec(stdout)?.[1] ?? NaN),
    failed: Number(/^number of failed transactions: (\d+)/m.exec(stdout)?.[1] ?? 0),
  }
}

/**
 * What PostgreSQL alone does with the service's own writes: pgbench runs the batched
 * allocate (and allocate + release) statements the batchers send, with no Node and no
 * HTTP in the way. The most the service could reach on this machine; issue 11 asks for
 * this figure wherever a target is out of reach.
 */
export async function database (o: RunOptions & { poolSize: number }): Promise<Row[]> {
  const rows: Row[] = []
  // The server keeps 4 batches in flight; under 64 connections a batch holds ~16 users.
  for (const [script, batch, clients] of [['allocate', 16, 4], ['allocate', 64, 4], ['cycle', 16, 4], ['cycle', 64, 4]] as const) {
    const url = await freshPostgres('token_pool_bench')
    await provisionPostgres(url, o.poolSize)
    const { tps, latencyMs: latency, failed } = await pgbench(url, { script, batch, clients, length: { seconds: o.seconds } })
    const check = await integrity(url)
    const ok = check.overlaps === 0 && check.doubleOpen === 0
    // A cycle is two requests in the HTTP case (allocate, release): counted the same way here.
    const perScript = script === 'cycle' ? 2 * batch : batch
    rows.push({
      case: 'database',
      backend: 'postgres',
      detail: `pgbench ${script}.sql, batches of ${batch}, ${clients} clients, pool ${o.poolSize.toLocaleString('en')} (${script === 'cycle' ? 'requests: 2 a lease' : 'leases'}/s; no Node, no HTTP)`,
      rps: tps * perScript,
      p50: latency,
      p99: latency,
      errors: failed,
      answers: 0,
      check: { ok, text: `${ok ? 'ok' : 'FAIL'}: ${check.overlaps} overlaps, ${check.doubleOpen} double holders, ${check.usages} usages; p50/p99 show pgbench's mean latency a script` },
    })
  }
  return rows
}
