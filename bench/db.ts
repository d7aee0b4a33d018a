import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'
import { btree_gist as btreeGist } from '@electric-sql/pglite/contrib/btree_gist'
import { migrate } from '../src/store/migrate.js'
import { openPostgres } from '../src/store/pg-db.js'

/** The bench's own databases live next to the tests' on the same server; never the product's or the tests'. */
const postgresBase = () => process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/token_pool_bench'

const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url))

/** The URL of a sibling database on the bench's server. */
export function databaseUrl (name: string): string {
  const url = new URL(postgresBase())
  url.pathname = '/' + name
  return url.toString()
}

export async function withClient<T> (url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** Creates the database if it is missing. */
export async function ensureDatabase (name: string): Promise<void> {
  await withClient(databaseUrl('postgres'), async (c) => {
    const { rows } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (rows.length === 0) await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
  })
}

/** An empty database for one case: the server applies the schema when it starts. */
export async function freshPostgres (name: string): Promise<string> {
  await ensureDatabase(name)
  const url = databaseUrl(name)
  await withClient(url, async (c) => {
    await c.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public')
  })
  return url
}

/**
 * Applies the schema and creates the pool's tokens ahead of the server (the server's own
 * start would too), then vacuums, so that every case starts from the same fresh table.
 */
export async function provisionPostgres (url: string, poolSize: number): Promise<void> {
  const db = openPostgres(url, { max: 1 })
  await migrate(db).finally(async () => { await db.close() })
  await withClient(url, async (c) => {
    await c.query('SET statement_timeout = 0')
    await c.query("SELECT tp_provision('default', $1, $1)", [poolSize])
    await c.query('VACUUM ANALYZE tokens')
  })
}

/** An empty directory for a file-backed PGlite (the default deployment: PGlite in ./data). */
export function freshPglite (dir: string): string {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dirname(dir), { recursive: true })
  return pathToFileURL(dir).toString()
}

export interface Integrity {
  /** usages that overlap another usage of the same token: must be 0 */
  overlaps: number
  /** usage rows committed: at least the 2xx answers counted by the load generator */
  usages: number
  /** open usages per token above 1, or per user above 1: must be 0 */
  doubleOpen: number
}

// Tokens with two usages whose lifetimes overlap; the exclusion constraint makes this impossible, we check anyway.
const OVERLAP_SQL = `
  SELECT count(*)::int AS n FROM usages a JOIN usages b
    ON a.token_id = b.token_id AND a.id < b.id
   AND tstzrange(a.started_at, coalesce(a.released_at, a.expires_at), '[)')
    && tstzrange(b.started_at, coalesce(b.released_at, b.expires_at), '[)')`
const USAGES_SQL = 'SELECT count(*)::int AS n FROM usages'
const DOUBLE_OPEN_SQL = `
  SELECT (SELECT count(*) FROM (SELECT token_id FROM usages WHERE released_at IS NULL AND expires_at > now() GROUP BY 1 HAVING count(*) > 1) a)
       + (SELECT count(*) FROM (SELECT user_id FROM usages WHERE released_at IS NULL AND expires_at > now() GROUP BY 1 HAVING count(*) > 1) b) AS n`

/** The overlap check that ends every allocate run: a fast wrong answer is a failure. */
export async function integrity (url: string): Promise<Integrity> {
  if (url.startsWith('file://')) {
    const db = await PGlite.create(fileURLToPath(url), { extensions: { btree_gist: btreeGist } })
    try {
      const one = async (sql: string) => ((await db.query<{ n: number }>(sql)).rows[0]?.n ?? -1)
      return { overlaps: await one(OVERLAP_SQL), usages: await one(USAGES_SQL), doubleOpen: await one(DOUBLE_OPEN_SQL) }
    } finally {
      await db.close()
    }
  }
  return await withClient(url, async (c) => {
    const one = async (sql: string) => Number((await c.query<{ n: number }>(sql)).rows[0]?.n ?? -1)
    return { overlaps: await one(OVERLAP_SQL), usages: await one(USAGES_SQL), doubleOpen: await one(DOUBLE_OPEN_SQL) }
  })
}

/** A digest of the given migrations (default all): a loaded read database is reused while those files are unchanged. */
export function schemaDigest (files = readdirSync(MIGRATIONS).sort()): string {
  const h = createHash('sha256')
  for (const f of files) h.update(f).update(readFileSync(join(MIGRATIONS, f)))
  return h.digest('hex').slice(0, 16)
}

export interface ReadData {
  url: string
  rows: number
  tokens: string[]
  /** seconds the load took, or null when an earlier load was reused */
  loadSeconds: number | null
}

/**
 * A database holding `rows` usages over `tokenCount` tokens, for the read case. Loading
 * takes minutes at 10,000,000 rows, so it is kept and reused while the schema is unchanged.
 * Rows go in with the exclusion constraint and every index in place: each token's usages
 * are back-to-back, one minute each, so the constraint holds by construction.
 */
export async function readDatabase (name: string, rows: number, tokenCount: number): Promise<ReadData> {
  await ensureDatabase(name)
  const url = databaseUrl(name)
  const perToken = Math.ceil(rows / tokenCount)
  // Migrations added since the load are applied by the server as it starts; a changed one means a reload.
  // An interrupted load (bench_load without bench_meta) resumes after its last whole slice.
  const state = await withClient(url, async (c) => {
    const current = async (table: string) => {
      const { rows: found } = await c.query<{ rows: string, tokens: number, digest: string, files: string, seconds: number }>(
        `SELECT * FROM ${table}`
      ).catch(() => ({ rows: [] }))
      const m = found[0]
      if (m === undefined || Number(m.rows) !== rows || m.tokens !== tokenCount) return undefined
      try {
        return m.digest === schemaDigest(m.files.split(',')) ? m : undefined
      } catch {
        return undefined
      }
    }
    const done = await current('bench_meta')
    if (done !== undefined) return { kind: 'reuse' as const }
    const started = await current('bench_load')
    if (started === undefined) return { kind: 'fresh' as const }
    const { rows: [last] } = await c.query<{ p: string }>(
      'SELECT coalesce(max(t.position), 0) AS p FROM tokens t WHERE EXISTS (SELECT 1 FROM usages u WHERE u.token_id = t.id)'
    )
    return { kind: 'resume' as const, from: Number(last?.p ?? 0) + 1, seconds: Number(started.seconds) }
  })
  let loadSeconds: number | null = null
  if (state.kind !== 'reuse') {
    const files = readdirSync(MIGRATIONS).sort()
    let seconds = state.kind === 'resume' ? state.seconds : 0
    let from = state.kind === 'resume' ? state.from : 1
    if (state.kind === 'fresh') {
      await withClient(url, async (c) => { await c.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public') })
      const t0 = performance.now()
      const db = openPostgres(url, { max: 1 })
      await migrate(db).finally(async () => { await db.close() })
      await withClient(url, async (c) => {
        await c.query("SELECT tp_provision('default', $1, $1)", [tokenCount])
        await c.query('CREATE TABLE bench_load (rows bigint, tokens int, digest text, files text, seconds float8)')
        seconds = (performance.now() - t0) / 1000
        await c.query('INSERT INTO bench_load VALUES ($1, $2, $3, $4, $5)', [rows, tokenCount, schemaDigest(files), files.join(','), seconds])
      })
    }
    await withClient(url, async (c) => {
      await c.query('SET maintenance_work_mem = \'256MB\'')
      // History is not news: skip the usages triggers (the event log) while loading it. This
      // skips the foreign-key triggers too, which rows built from tokens can't break; the
      // exclusion constraint and every index stay in force. A bench database only.
      await c.query('SET session_replication_role = replica')
      await c.query('SET synchronous_commit = off')
      // One statement per slice of tokens keeps each transaction and its WAL moderate.
      const slice = Math.max(1, Math.floor(1_000_000 / perToken))
      for (; from <= tokenCount; from += slice) {
        const t0 = performance.now()
        await c.query(`
          INSERT INTO usages (pool, token_id, user_id, started_at, expires_at, released_at, release_reason)
          SELECT t.pool, t.id, md5(t.position::text || ':' || g)::uuid,
                 b.base + make_interval(mins => g), b.base + make_interval(mins => g + 1),
                 b.base + make_interval(mins => g + 1), 'expired'
            FROM tokens t
            CROSS JOIN (SELECT date_trunc('day', now()) - make_interval(mins => $3 + 10) AS base) b
            CROSS JOIN generate_series(1, $3::int) g
           WHERE t.position BETWEEN $1 AND $2
           ORDER BY t.position, g`, [from, Math.min(tokenCount, from + slice - 1), perToken])
        seconds += (performance.now() - t0) / 1000
        await c.query('UPDATE bench_load SET seconds = $1', [seconds])
      }
      const t0 = performance.now()
      await c.query('VACUUM ANALYZE usages')
      await c.query('VACUUM ANALYZE tokens')
      seconds += (performance.now() - t0) / 1000
      await c.query('CREATE TABLE bench_meta AS SELECT * FROM bench_load')
      await c.query('UPDATE bench_meta SET seconds = $1', [seconds])
    })
    loadSeconds = seconds
  }
  const tokens = await withClient(url, async (c) => (await c.query<{ id: string }>('SELECT id FROM tokens ORDER BY position')).rows.map((r) => r.id))
  return { url, rows, tokens, loadSeconds }
}
