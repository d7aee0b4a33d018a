import { parseArgs } from 'node:util'
import { pgbench } from './database.js'
import { freshPostgres, provisionPostgres, withClient } from './db.js'

/**
 * `node --import tsx bench/write-costs.ts`: what each index and trigger written by an
 * allocation costs. For each one, a fresh pool of 100,000 tokens without it, a checkpoint,
 * then pgbench runs a fixed number of the service's allocate batches
 * (bench/pgbench/allocate.sql, 16 users a batch, 4 clients). Measured: the WAL written per
 * lease (exact, whatever else the machine does) and leases/s (noisy on a shared machine:
 * every case alternates with the full schema, and is read against their mean). Scratch
 * databases only: most of these enforce a rule or serve a query (BENCHMARKS.md).
 */
const { values: flags } = parseArgs({ options: { batches: { type: 'string', default: '150' }, rounds: { type: 'string', default: '2' } } })
const batches = Number(flags.batches)
const rounds = Number(flags.rounds)

const WITHOUT: Array<[string, string]> = [
  ['usages: the event triggers (no pool_events row)', 'ALTER TABLE usages DISABLE TRIGGER usages_events_inserted; ALTER TABLE usages DISABLE TRIGGER usages_events_updated'],
  ['usages_no_overlap (GiST exclusion)', 'ALTER TABLE usages DROP CONSTRAINT usages_no_overlap'],
  ['usages_one_open_per_token', 'DROP INDEX usages_one_open_per_token'],
  ['usages_one_open_per_user', 'DROP INDEX usages_one_open_per_user'],
  ['usages_open_by_expiry', 'DROP INDEX usages_open_by_expiry'],
  ['usages_history', 'DROP INDEX usages_history'],
  ['usages_by_start', 'DROP INDEX usages_by_start'],
  ['tokens_deadline', 'DROP INDEX tokens_deadline'],
  ['tokens_oldest_lease', 'DROP INDEX tokens_oldest_lease'],
  ['tokens_in_pool', 'DROP INDEX tokens_in_pool'],
  ['pool_events_age', 'DROP INDEX pool_events_age'],
  ['pool_events_order', 'DROP INDEX pool_events_order'],
]

interface Measured { rate: number, walBytes: number }

async function measure (sql: string): Promise<Measured> {
  const url = await freshPostgres('token_pool_bench')
  await provisionPostgres(url, 100_000)
  const lsn = async () => await withClient(url, async (c) => (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l)
  await withClient(url, async (c) => { if (sql !== '') await c.query(sql); await c.query('CHECKPOINT') })
  const before = await lsn()
  const { tps } = await pgbench(url, { script: 'allocate', batch: 16, clients: 4, length: { transactions: batches } })
  const after = await lsn()
  const walBytes = await withClient(url, async (c) => Number((await c.query<{ d: string }>('SELECT pg_wal_lsn_diff($1, $2) AS d', [after, before])).rows[0]!.d))
  const leases = 4 * batches * 16
  return { rate: tps * 16, walBytes: walBytes / leases }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
const full: Measured[] = []
const rows: Array<[string, Measured[]]> = []
for (const [name, sql] of WITHOUT) {
  const got: Measured[] = []
  for (let i = 0; i < rounds; i++) {
    full.push(await measure(''))
    got.push(await measure(sql))
  }
  rows.push([name, got])
  process.stderr.write(`${name}: ${got.map((m) => `${Math.round(m.rate)}/s ${Math.round(m.walBytes)} B`).join(', ')}\n`)
}
const baseRate = mean(full.map((m) => m.rate))
const baseWal = mean(full.map((m) => m.walBytes))
const pct = (x: number) => `${x >= 0 ? '+' : ''}${Math.round(x * 100)}%`
console.log(`Full schema: ${Math.round(baseWal).toLocaleString('en')} bytes of WAL a lease, ${Math.round(baseRate).toLocaleString('en')} leases/s (means of ${full.length} runs).`)
console.log('')
console.log('| without | WAL bytes a lease | vs full | leases/s | vs full |')
console.log('|---|---:|---:|---:|---:|')
for (const [name, got] of rows.sort((a, b) => mean(a[1].map((m) => m.walBytes)) - mean(b[1].map((m) => m.walBytes)))) {
  const wal = mean(got.map((m) => m.walBytes))
  const rate = mean(got.map((m) => m.rate))
  console.log(`| ${name} | ${Math.round(wal).toLocaleString('en')} | ${pct(wal / baseWal - 1)} | ${Math.round(rate).toLocaleString('en')} | ${pct(rate / baseRate - 1)} |`)
}
