/**
 * The heavy reliability run (npm run reliability): N real server processes on one
 * PostgreSQL schema, interleaved load from many users until at least --allocations
 * allocations were acknowledged, with a PostgreSQL outage, a SIGKILL under load and a
 * round of killed connections along the way. Then SQL checks the promises: no
 * overlapping usages, every acknowledged lease in the history as answered, no token's
 * mirror disagreeing with its usage, and every node's event stream carrying every lease.
 * Figures go to bench/reliability/last-run.json and into RELIABILITY.md.
 *
 * It stops and starts the local PostgreSQL cluster (--outage pg_ctl, the default): run it
 * on a machine where nobody else needs that PostgreSQL for a few seconds, or use
 * --outage proxy (a TCP proxy between the nodes and PostgreSQL is cut instead).
 */
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { DbProxy } from '../../test/reliability/helpers/proxy.js'
import { SseClient, type SseEvent } from '../../test/reliability/helpers/sse.js'
import {
  call, lostLeases, mirrorMismatches, overlapping, sharedSchema, startNode, type Acknowledged, type Node,
} from '../../test/reliability/helpers/nodes.js'

const { values: args } = parseArgs({
  options: {
    allocations: { type: 'string', default: '100000' },
    nodes: { type: 'string', default: '3' },
    users: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '48' },
    'pool-size': { type: 'string', default: '100' },
    outage: { type: 'string', default: 'pg_ctl' },
    'outage-seconds': { type: 'string', default: '3' },
    'first-port': { type: 'string', default: '4350' },
    'no-write': { type: 'boolean', default: false },
  },
})
const TARGET = Number(args.allocations)
const NODES = Number(args.nodes)
const USERS = Number(args.users)
const WIDTH = Number(args.concurrency)
const OUTAGE = args.outage as 'pg_ctl' | 'proxy' | 'none'
const OUTAGE_MS = Number(args['outage-seconds']) * 1000
const FIRST_PORT = Number(args['first-port'])
const DATABASE_URL = process.env.RELIABILITY_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/token_pool_test'
const PG_CLUSTER = (process.env.RELIABILITY_PG_CLUSTER ?? '15 main').split(' ')

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))
const log = (msg: string) => { process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`) }

const figures = {
  started_at: new Date().toISOString(),
  nodes: NODES,
  users: USERS,
  concurrency: WIDTH,
  pool_size: Number(args['pool-size']),
  requests: 0,
  allocate_requests: 0,
  allocations_acknowledged: 0,
  leases_granted: 0,
  releases_acknowledged: 0,
  not_holder: 0,
  answered_503: 0,
  network_errors: 0,
  unexpected_answers: 0,
  faults: [] as Array<{ kind: string, at_allocations: number, detail: string }>,
  overlaps_found: -1,
  acknowledged_leases_lost: -1,
  half_written_tokens: -1,
  events_missed: -1,
  events_missed_by_node: [] as number[],
  events_checked: 0,
  stream_reconnects: 0,
  duration_seconds: 0,
  throughput_per_second: 0,
}
const unexpected: string[] = []

async function main (): Promise<void> {
  const t0 = Date.now()
  const shared = await sharedSchema(DATABASE_URL)
  log(`schema ${shared.schema} on ${DATABASE_URL}`)
  const pg = new URL(DATABASE_URL)
  const proxy = OUTAGE === 'proxy' ? new DbProxy(FIRST_PORT + 40, { host: pg.hostname, port: Number(pg.port || 5432) }) : undefined
  await proxy?.start()
  const urlFor = (i: number) => {
    const url = new URL(shared.urlFor(`${shared.tag}-${i}`))
    if (proxy !== undefined) url.host = `127.0.0.1:${proxy.port}`
    return url.toString()
  }
  const env = (i: number) => ({ DATABASE_URL: urlFor(i), POOL_SIZE: args['pool-size']!, LOG_LEVEL: 'error' })
  const nodes: Node[] = await Promise.all(Array.from({ length: NODES }, async (_, i) => await startNode(`node${i}`, FIRST_PORT + i, env(i))))
  log(`${NODES} nodes up on ports ${FIRST_PORT}-${FIRST_PORT + NODES - 1}`)

  // Every node's event stream, tracking the leases it announced.
  const seen = nodes.map(() => new Set<number>())
  const lastId: Array<string | undefined> = nodes.map(() => undefined)
  const streams: SseClient[] = []
  const follow = async (i: number) => {
    const headers: Record<string, string> = lastId[i] === undefined ? {} : { 'last-event-id': lastId[i]! }
    streams[i] = await SseClient.open(`${nodes[i]!.url}/api/events`, headers, (e: SseEvent) => {
      lastId[i] = e.id
      if (e.event === 'allocated') seen[i]!.add(JSON.parse(e.data).lease_id)
    })
  }
  for (let i = 0; i < NODES; i++) await follow(i)
  // As EventSource does: a stream that ends (the node dropped a client too far behind, or
  // the node died) is reopened with Last-Event-ID, and must then miss nothing.
  let reopening = false
  const reopen = setInterval(() => {
    if (reopening) return
    const i = streams.findIndex((s) => s.ended)
    if (i < 0 || nodes[i]!.child.exitCode !== null || nodes[i]!.child.signalCode !== null) return
    reopening = true
    figures.stream_reconnects++
    follow(i).catch(() => {}).finally(() => { reopening = false })
  }, 500)

  const users = Array.from({ length: USERS }, () => randomUUID())
  const held = new Map<string, string>()
  const acked: Acknowledged[] = []
  const leaseIds = new Set<number>()
  const run = { stop: false }

  const worker = async (w: number) => {
    let turn = w
    while (!run.stop) {
      turn++
      const node = nodes[turn % NODES]!
      const user = users[Math.floor(Math.random() * USERS)]!
      const token = held.get(user)
      figures.requests++
      if (token !== undefined && Math.random() < 0.15) {
        const res = await call(`${node.url}/api/tokens/${token}/release`, 'POST', { user_id: user })
        held.delete(user)
        if (res.status === 200) figures.releases_acknowledged++
        else if (res.status === 409 && res.body?.error?.code === 'not_holder') figures.not_holder++
        else tally(res.status, res.body, 'release')
        continue
      }
      figures.allocate_requests++
      const res = await call(`${node.url}/api/tokens/allocate`, 'POST', { user_id: user })
      if (res.status === 200) {
        const lease = res.body.data as Acknowledged
        acked.push(lease)
        leaseIds.add(lease.lease_id)
        held.set(user, lease.token_id)
        figures.allocations_acknowledged++
      } else {
        tally(res.status, res.body, 'allocate')
      }
    }
  }

  // The faults, at set points of the run.
  const faults = async () => {
    const at = (share: number) => figures.allocations_acknowledged >= TARGET * share
    const waitFor = async (share: number) => { while (!at(share) && !run.stop) await sleep(50) }

    await waitFor(0.3)
    if (OUTAGE !== 'none') {
      const before503 = figures.answered_503
      log(`outage: ${OUTAGE} for ${OUTAGE_MS} ms`)
      const down = Date.now()
      if (OUTAGE === 'pg_ctl') pgctl('stop')
      else await proxy!.cut()
      const readyz = await call(`${nodes[0]!.url}/readyz`, 'GET', undefined, 10_000)
      await sleep(OUTAGE_MS)
      if (OUTAGE === 'pg_ctl') pgctl('start')
      else await proxy!.restore()
      const up = Date.now()
      while ((await call(`${nodes[0]!.url}/readyz`, 'GET')).status !== 200) await sleep(100)
      const ready = Date.now()
      figures.faults.push({
        kind: OUTAGE === 'pg_ctl' ? 'PostgreSQL stopped and started (pg_ctlcluster stop -m fast)' : 'database connection cut (TCP proxy)',
        at_allocations: figures.allocations_acknowledged,
        detail: `down ${((up - down) / 1000).toFixed(1)} s; /readyz during: ${readyz.status}; ready again ${((ready - up) / 1000).toFixed(1)} s after the database; ${figures.answered_503 - before503} requests answered 503 meanwhile; no restart`,
      })
    }

    await waitFor(0.6)
    const victim = 1 % NODES
    log(`SIGKILL ${nodes[victim]!.name}`)
    nodes[victim]!.child.kill('SIGKILL')
    await nodes[victim]!.exited
    streams[victim]!.close()
    await sleep(1000)
    nodes[victim] = await startNode(`node${victim}b`, FIRST_PORT + victim, env(victim))
    await follow(victim)
    figures.faults.push({
      kind: `SIGKILL of ${nodes[victim]!.name.slice(0, -1)} under load, then a restart`,
      at_allocations: figures.allocations_acknowledged,
      detail: `its event stream reconnected with Last-Event-ID ${lastId[victim] ?? '(none)'}`,
    })

    await waitFor(0.8)
    const killed = await shared.db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1', [`${shared.tag}-%`])
    log(`terminated ${killed.length} backends`)
    figures.faults.push({ kind: 'pg_terminate_backend of every node connection, LISTEN ones included', at_allocations: figures.allocations_acknowledged, detail: `${killed.length} connections` })
  }

  const progress = setInterval(() => {
    log(`${figures.allocations_acknowledged} / ${TARGET} allocations, ${figures.requests} requests, ${figures.answered_503} × 503, ${figures.network_errors} network errors`)
  }, 5000)
  const faulting = faults()
  const workers = Array.from({ length: WIDTH }, async (_, w) => { await worker(w) })
  while (figures.allocations_acknowledged < TARGET) await sleep(100)
  run.stop = true
  await Promise.all(workers)
  await faulting
  clearInterval(progress)
  const loadSeconds = (Date.now() - t0) / 1000

  log('checking')
  figures.overlaps_found = (await overlapping(shared.db)).length
  figures.acknowledged_leases_lost = (await lostLeases(shared.db, acked)).length
  figures.half_written_tokens = (await mirrorMismatches(shared.db)).length
  figures.leases_granted = leaseIds.size
  // Every stream, including the restarted node's (via Last-Event-ID), carries every lease.
  const deadline = Date.now() + 30_000
  let missed = 0
  for (;;) {
    missed = 0
    for (const s of seen) for (const id of leaseIds) if (!s.has(id)) missed++
    if (missed === 0 || Date.now() > deadline) break
    await sleep(500)
  }
  figures.events_missed = missed
  figures.events_missed_by_node = seen.map((s) => [...leaseIds].filter((id) => !s.has(id)).length)
  for (const [i, s] of seen.entries()) {
    const gone = [...leaseIds].filter((id) => !s.has(id)).sort((a, b) => a - b)
    if (gone.length > 0) log(`node${i} stream: ${s.size} seen, ${gone.length} missed, first ${gone[0]}, last ${gone.at(-1)}; last event id ${lastId[i]}; ended ${streams[i]!.ended}`)
  }
  figures.events_checked = leaseIds.size * NODES
  figures.duration_seconds = Math.round(loadSeconds)
  figures.throughput_per_second = Math.round(figures.requests / loadSeconds)

  clearInterval(reopen)
  for (const s of streams) s.close()
  await Promise.all(nodes.map(async (n) => {
    n.child.kill('SIGTERM')
    const code = await n.exited
    if (code !== 0) unexpected.push(`${n.name} exited ${code} on SIGTERM`)
  }))
  await proxy?.close()
  await shared.drop()

  process.stdout.write(JSON.stringify({ ...figures, unexpected: unexpected.slice(0, 20) }, null, 2) + '\n')
  if (!args['no-write']) record()
  const ok = figures.overlaps_found === 0 && figures.acknowledged_leases_lost === 0 && figures.half_written_tokens === 0 &&
    figures.events_missed === 0 && figures.unexpected_answers === 0 && unexpected.length === 0
  log(ok ? 'PASS' : 'FAIL')
  process.exitCode = ok ? 0 : 1
}

/** 503 unavailable and network errors are the answers a fault may give; anything else is a failure. */
function tally (status: number, body: any, what: string): void {
  if (status === 503 && body?.error?.code === 'unavailable') figures.answered_503++
  else if (status === 0) figures.network_errors++
  else {
    figures.unexpected_answers++
    unexpected.push(`${what} → ${status} ${JSON.stringify(body).slice(0, 200)}`)
  }
}

function pgctl (action: 'stop' | 'start'): void {
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', ...PG_CLUSTER, action, ...(action === 'stop' ? ['-m', 'fast'] : [])], { stdio: 'inherit' })
}

/** Writes the figures to last-run.json and between the markers in RELIABILITY.md. */
function record (): void {
  writeFileSync(new URL('./last-run.json', import.meta.url), JSON.stringify(figures, null, 2) + '\n')
  const doc = new URL('../../RELIABILITY.md', import.meta.url)
  const text = readFileSync(doc, 'utf8')
  const table = [
    '<!-- reliability:begin (written by npm run reliability) -->',
    `Last run: ${figures.started_at}, ${figures.duration_seconds} s, \`npm run reliability\` ` +
      `(${figures.nodes} nodes, ${figures.users} users, ${figures.concurrency} concurrent clients, POOL_SIZE ${figures.pool_size}).`,
    '',
    '| figure | value |',
    '|---|---|',
    `| requests made | ${figures.requests} (${figures.throughput_per_second}/s) |`,
    `| allocations acknowledged (200) | ${figures.allocations_acknowledged} |`,
    `| distinct leases granted | ${figures.leases_granted} |`,
    `| releases acknowledged | ${figures.releases_acknowledged} (${figures.not_holder} × 409 not_holder after an eviction) |`,
    `| nodes | ${figures.nodes} |`,
    `| faults injected | ${figures.faults.length}: ${figures.faults.map((f) => f.kind).join('; ')} |`,
    `| answered 503 unavailable during faults | ${figures.answered_503} |`,
    `| network errors (the killed node's connections) | ${figures.network_errors} |`,
    `| unexpected answers (anything else) | ${figures.unexpected_answers} |`,
    `| **overlaps found** | **${figures.overlaps_found}** |`,
    `| **acknowledged leases lost** | **${figures.acknowledged_leases_lost}** |`,
    `| half-written tokens (mirror ≠ usage) | ${figures.half_written_tokens} |`,
    `| leases missing from a node's event stream | ${figures.events_missed} of ${figures.events_checked} (streams reopened with Last-Event-ID: ${figures.stream_reconnects}) |`,
    '',
    ...figures.faults.map((f) => `- ${f.kind}, after ${f.at_allocations} allocations: ${f.detail}.`),
    '<!-- reliability:end -->',
  ].join('\n')
  const updated = text.replace(/<!-- reliability:begin[\s\S]*?<!-- reliability:end -->/, table)
  writeFileSync(doc, updated)
}

main().catch((err: unknown) => {
  process.stderr.write(`reliability run failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
  setTimeout(() => process.exit(), 5000).unref()
})
