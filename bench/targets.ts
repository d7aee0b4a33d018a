import type { Row } from './harness.js'

/** One of issue 11's targets: what it reads from this run's rows, and the bar it must clear. */
interface Target {
  name: string
  goal: string
  /** the measured figure, or undefined when the rows it needs were not run */
  measure: (rows: Row[]) => { value: number, text: string } | undefined
  met: (value: number) => boolean
  /** the pgbench case with the same writes, shown next to the figure */
  bound?: 'allocate' | 'cycle'
}

const find = (rows: Row[], c: string, backend: Row['backend'], detail: (d: string) => boolean) =>
  rows.find((r) => r.case === c && r.backend === backend && detail(r.detail) && r.rps > 0)

const pct = (v: number) => `${Math.round(v * 100)}%`

/** A row's share of the ceiling. */
function ratioOf (c: string, backend: Row['backend'], detail: (d: string) => boolean) {
  return (rows: Row[]) => {
    const r = find(rows, c, backend, detail)
    return r?.ratio === undefined ? undefined : { value: r.ratio, text: `${Math.round(r.rps).toLocaleString('en')} req/s, ${pct(r.ratio)}` }
  }
}

/** What PostgreSQL alone did with the same writes (pgbench), for a target the service missed. */
function databaseBound (rows: Row[], script: 'allocate' | 'cycle'): string {
  const best = rows.filter((r) => r.case === 'database' && r.detail.startsWith(`pgbench ${script}.sql`) && r.ratio !== undefined)
    .sort((a, b) => b.rps - a.rps)[0]
  return best === undefined ? '' : `; PostgreSQL alone: ${Math.round(best.rps).toLocaleString('en')}/s, ${pct(best.ratio!)}`
}

/** Allocation on one backend, at pool 100 and 100,000. */
const allocateTargets = (backend: 'postgres' | 'pglite', label: string, goal: string, bar: number): Target[] =>
  [100, 100_000].map((n) => ({
    name: `allocate, ${label}, pool ${n.toLocaleString('en')}`,
    goal,
    measure: ratioOf('allocate', backend, (d) => d === `pool ${n.toLocaleString('en')}`),
    met: (v) => v >= bar,
    ...(backend === 'postgres' ? { bound: 'allocate' as const } : {}),
  }))

const TARGETS: Target[] = [
  ...allocateTargets('postgres', 'PostgreSQL', '≥ 30% of the ceiling', 0.3),
  {
    name: 'allocate + release cycle, PostgreSQL (both requests counted)',
    goal: '≥ 25%',
    measure: ratioOf('cycle', 'postgres', (d) => d.startsWith('allocate + release, pool')),
    met: (v) => v >= 0.25,
    bound: 'cycle',
  },
  {
    name: 'GET /api/tokens/:id, PostgreSQL',
    goal: '≥ 60%',
    measure: ratioOf('read', 'postgres', (d) => d === 'GET /api/tokens/:id, empty history'),
    met: (v) => v >= 0.6,
  },
  {
    name: 'GET /api/stats, PostgreSQL',
    goal: '≥ 60%',
    measure: ratioOf('read', 'postgres', (d) => d === 'GET /api/stats, empty history'),
    met: (v) => v >= 0.6,
  },
  {
    name: 'GET /api/pools/:pool/stats at 1,000,000 tokens',
    goal: '≥ 30%',
    measure: ratioOf('big', 'postgres', (d) => d.startsWith('GET /api/pools/default/stats, pool 1,000,000')),
    met: (v) => v >= 0.3,
  },
  ...allocateTargets('pglite', 'PGlite', '≥ 20%', 0.2),
  {
    name: 'PGlite server RSS under allocate load',
    goal: '< 300 MB',
    measure: (rows) => {
      const rss = rows.filter((r) => r.case === 'allocate' && r.backend === 'pglite' && r.rssMb !== undefined).map((r) => r.rssMb!)
      return rss.length === 0 ? undefined : { value: Math.max(...rss), text: `max ${Math.max(...rss)} MB` }
    },
    met: (v) => v < 300,
  },
  {
    name: 'history page at 10,000,000 usages vs 100 per token',
    goal: 'within 20%',
    measure: (rows) => {
      const big = find(rows, 'read', 'postgres', (d) => d.startsWith('GET /api/tokens/:id/history, 10,000,000 usages'))
      const small = find(rows, 'read', 'postgres', (d) => d.startsWith('GET /api/tokens/:id/history, 100,000 usages'))
      if (big === undefined || small === undefined) return undefined
      const change = big.rps / small.rps - 1
      return { value: change, text: `${Math.round(big.rps).toLocaleString('en')} against ${Math.round(small.rps).toLocaleString('en')} req/s (${change >= 0 ? '+' : ''}${pct(change)})` }
    },
    met: (v) => v >= -0.2,
  },
]

/** Issue 11's targets against this run, each with its verdict (or why it has none). */
export function targetsTable (rows: Row[]): string {
  return [
    '| target | goal | this run | verdict |',
    '|---|---|---|---|',
    ...TARGETS.map((t) => {
      const m = t.measure(rows)
      const bound = t.bound === undefined ? '' : databaseBound(rows, t.bound)
      return `| ${t.name} | ${t.goal} | ${m?.text ?? '—'}${bound} | ${m === undefined ? 'not run (see --only)' : t.met(m.value) ? 'met' : '**missed**'} |`
    }),
  ].join('\n')
}
