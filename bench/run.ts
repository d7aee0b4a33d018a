import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { execFileSync } from 'node:child_process'
import { database } from './database.js'
import * as flows from './flow-cases.js'
import * as h from './harness.js'
import { runFrom } from './servers.js'
import { targetsTable } from './targets.js'

/**
 * `npm run bench`: every case of issue 4, each against the ceiling of this same run.
 * Absolute figures move with whatever else the machine does; the ratios are what compare.
 */
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    seconds: { type: 'string' },
    port: { type: 'string', default: process.env.BENCH_PORT ?? '4700' },
    'read-rows': { type: 'string' },
    /** a long allocate run that watches the server's memory (the issue asks for 300 s); 0 skips it */
    'soak-seconds': { type: 'string', default: '0' },
  },
})

const quick = flags.quick === true
const opts: h.RunOptions = {
  seconds: Number(flags.seconds ?? (quick ? 3 : 10)),
  warmupSeconds: quick ? 1 : 2,
  connections: 64,
  port: Number(flags.port),
}
const readRows = Number(flags['read-rows'] ?? (quick ? 100_000 : 10_000_000))
const only = flags.only?.split(',')
const wanted = (name: string) => only === undefined || only.includes(name)

const loadAtStart = loadavg()
const rows: h.Row[] = []
const notes: string[] = []
const log = (s: string) => process.stderr.write(s + '\n')
const started = performance.now()

async function step (name: string, fn: () => Promise<h.Row | h.Row[]>): Promise<void> {
  log(`… ${name}`)
  const t0 = performance.now()
  try {
    const out = await fn()
    for (const r of Array.isArray(out) ? out : [out]) {
      rows.push(r)
      log(`  ${r.case} ${r.backend} ${r.detail}: ${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.errors} errors${r.check ? ', ' + r.check.text : ''}`)
    }
  } catch (err) {
    rows.push({ case: name, backend: '-', detail: 'FAILED: ' + (err as Error).message.split('\n')[0], rps: 0, p50: 0, p99: 0, errors: 1, answers: 0 })
    log(`  FAILED: ${(err as Error).stack ?? String(err)}`)
  }
  log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
}

const port = (offset: number) => ({ ...opts, port: opts.port + offset })

// Servers run what `npm start` runs; tsx costs ~40 MB of RSS and a slower start.
try {
  log('… building dist/ (tsc -p tsconfig.build.json)')
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit', cwd: new URL('..', import.meta.url) })
  runFrom.dist = true
} catch {
  notes.push('The build failed, so servers ran from src/ through tsx (more memory, same code).')
}

await step('ceiling', async () => await h.ceiling(port(0)))
if (wanted('allocate')) {
  for (const backend of ['postgres', 'pglite'] as const) {
    for (const poolSize of [100, 100_000]) {
      await step(`allocate ${backend} ${poolSize}`, async () => await h.allocate({ ...port(10), backend, poolSize }))
    }
  }
  // What one log line per request costs (bench servers otherwise run at LOG_LEVEL=warn).
  await step('allocate logging', async () => ({
    ...await h.allocate({ ...port(10), backend: 'postgres', poolSize: 100_000, env: { LOG_LEVEL: 'info' } }),
    detail: 'pool 100,000, LOG_LEVEL=info (a JSON line per request)',
  }))
}
if (wanted('cycle')) {
  await step('cycle', async () => await h.cycle({ ...port(20), backend: 'postgres', poolSize: 100_000 }))
  await step('cycle without HTTP', async () => await h.cycleWithoutHttp({ ...opts, poolSize: 100_000 }))
}
// PostgreSQL alone with the same writes (pgbench): the most the two cases above could reach here.
if (wanted('database')) await step('database', async () => await database({ ...opts, poolSize: 100_000 }))
if (wanted('read')) {
  // Empty is the literal baseline; 100 usages a token fills the same 50-row page as 10,000,000 do.
  for (const n of [...new Set([0, 100_000, readRows])]) {
    await step(`read ${n}`, async () => {
      const { rows: out, loadSeconds } = await h.read({ ...port(30), rows: n, tokens: 1000 })
      if (loadSeconds !== null) notes.push(`Loading ${n.toLocaleString('en')} usages (generate_series, constraints in place) took ${loadSeconds.toFixed(0)} s.`)
      else if (n > 0) notes.push(`The ${n.toLocaleString('en')}-usage read database was loaded by an earlier run and reused.`)
      return out
    })
  }
}
if (wanted('scale')) {
  for (const poolSize of [100, 10_000, 1_000_000]) {
    await step(`scale ${poolSize}`, async () => await h.allocate({ ...port(40), backend: 'postgres', poolSize, label: 'scale' }))
  }
}
if (wanted('nodes')) {
  for (const nodes of [1, 2]) {
    await step(`nodes ${nodes}`, async () => await h.allocate({ ...port(50), backend: 'postgres', poolSize: 100_000, nodes, label: 'nodes' }))
  }
}
if (wanted('big')) await step('big', async () => await h.big({ ...port(45), tokens: quick ? 100_000 : 1_000_000 }))
const soakSeconds = Number(flags['soak-seconds'])
if (soakSeconds > 0) {
  await step('soak', async () => await h.allocate({
    ...port(60), seconds: soakSeconds, backend: 'postgres', poolSize: 100_000, label: 'soak',
  }))
}
if (wanted('simulate')) {
  await step('simulate', async () => {
    const ops = quick ? 100_000 : 1_000_000
    const s = await h.simulate(ops, 1000)
    const base: Omit<h.Row, 'detail' | 'rps'> = { case: 'simulate', backend: '-', p50: 0, p99: 0, errors: 0, answers: 0 }
    if (s.note !== '') notes.push(s.note)
    return [
      { ...base, detail: `bare min-heap loop, ${ops.toLocaleString('en')} ops / 1,000 tokens`, rps: ops / (s.heapMs / 1000), note: `${s.heapMs.toFixed(0)} ms` },
      {
        ...base,
        detail: `token-pool simulate ${ops.toLocaleString('en')} --tokens 1000`,
        rps: s.simulateMs > 0 ? ops / (s.simulateMs / 1000) : 0,
        note: s.simulateMs > 0 ? `${s.simulateMs.toFixed(0)} ms, ${(s.simulateMs / s.heapMs).toFixed(2)}x the heap loop` : 'not available',
      },
    ]
  })
}
if (wanted('cooldown') || wanted('renew')) {
  // The hand-written client's own limit, to read the cooldown and renew ratios against.
  await step('flows client', async () => await flows.clientCeiling(port(85)))
}
if (wanted('wait')) await step('wait', async () => await flows.wait({ ...port(70), nodes: 2, clients: 200, poolSize: 10 }))
if (wanted('cooldown')) await step('cooldown', async () => await flows.cooldown({ ...port(75), poolSize: 1000 }))
if (wanted('renew')) await step('renew', async () => await flows.renew({ ...port(80), poolSize: 1000 }))

// The ceiling again at the end: the machine is shared, so the ratios use the mean of both.
await step('ceiling (end)', async () => await h.ceiling(port(0), 'ceiling (end)'))
const ceilings = rows.filter((r) => r.case.startsWith('ceiling') && r.rps > 0)
const ceilingRps = ceilings.reduce((a, r) => a + r.rps, 0) / ceilings.length
const ceilingP99 = ceilings.reduce((a, r) => a + r.p99, 0) / ceilings.length
for (const r of rows) {
  if (ceilings.length === 0 || r.case === 'simulate') continue
  r.ratio = r.rps / ceilingRps
  r.p99Ratio = r.p99 / ceilingP99
}
notes.unshift(`Ratios are against the mean of the two ceiling runs: ${Math.round(ceilingRps)} req/s, p99 ${ceilingP99.toFixed(1)} ms.`)

const fmt = (n: number | undefined, digits = 0) => n === undefined ? '' : n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const table = [
  '| case | backend | what | req/s | p50 ms | p99 ms | errors | vs ceiling req/s | vs ceiling p99 | RSS MB | check |',
  '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ...rows.map((r) => `| ${r.case} | ${r.backend} | ${r.detail} | ${fmt(r.rps)} | ${r.case === 'simulate' ? '' : fmt(r.p50, 1)} | ${r.case === 'simulate' ? '' : fmt(r.p99, 1)} | ${r.errors} | ${r.ratio === undefined ? '' : Math.round(r.ratio * 100) + '%'} | ${r.p99Ratio === undefined ? '' : fmt(r.p99Ratio, 1) + 'x'} | ${r.rssMb ?? ''} | ${[r.check?.text, r.note].filter(Boolean).join('; ')} |`),
].join('\n')

const [l1, l5] = loadavg()
const header = [
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}. Load average (1 / 5 min) at the start ${loadAtStart[0]?.toFixed(2)} / ${loadAtStart[1]?.toFixed(2)}, at the end ${l1?.toFixed(2)} / ${l5?.toFixed(2)}: other work shares these cores.`,
  `Date: ${new Date().toISOString()}. Command: npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}. ${opts.seconds} s per run after ${opts.warmupSeconds} s warm-up, ${opts.connections} connections. Total ${((performance.now() - started) / 1000).toFixed(0)} s.`,
]
const report = [...header, '', table, '', 'Issue 11\'s targets, each a ratio to this run\'s ceiling:', '', targetsTable(rows), '', ...notes.map((n) => '- ' + n)].join('\n') + '\n'
process.stdout.write('\n' + report)
mkdirSync(new URL('./.results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./.results/latest.md', import.meta.url), report)
writeFileSync(new URL('./.results/latest.json', import.meta.url), JSON.stringify({ rows, notes }, null, 2))
if (rows.some((r) => r.check?.ok === false || r.detail.startsWith('FAILED'))) process.exitCode = 1
