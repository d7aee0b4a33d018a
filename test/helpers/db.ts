import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { after, describe, type TestContext } from 'node:test'
import { PGlite } from '@electric-sql/pglite'
import type { Db, Session } from '../../src/store/db.js'
import { PGLITE_EXTENSIONS, pgliteDb } from '../../src/store/pglite-db.js'
import { openPostgres } from '../../src/store/pg-db.js'
import { migrate } from '../../src/store/migrate.js'

export type Backend = 'pglite' | 'postgres'

/** Set by .ci/run; without it the PostgreSQL half of the suite is skipped (and says so). */
const SERVER_URL = process.env.TEST_DATABASE_URL
const MARKER = new URL('../artifacts/postgres-ran', import.meta.url)

const skipPostgres = SERVER_URL === undefined
  ? 'PostgreSQL half SKIPPED: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/token_pool_test) to run it'
  : false

/**
 * A database of this test process's own on that server, dropped when the file ends. Test
 * files run side by side; in one database they would share advisory locks (every test's
 * `default` pool takes the same turn) and the event log's horizon (one file's open
 * transaction holds back the other's events), so one file's held locks and long statements
 * would slow the other's timed checks.
 */
async function databaseOfThisProcess (serverUrl: string): Promise<string> {
  const url = new URL(serverUrl)
  const database = `${decodeURIComponent(url.pathname.slice(1))}_p${process.pid}`
  const name = `"${database}"`
  const onServer = async (sql: string): Promise<void> => {
    const admin = openPostgres(serverUrl, { max: 1 })
    try { await admin.query(sql) } finally { await admin.close() }
  }
  await onServer(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await onServer(`CREATE DATABASE ${name}`)
  after(async () => { await onServer(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) })
  url.pathname = '/' + encodeURIComponent(database)
  return url.toString()
}

export const POSTGRES_URL = SERVER_URL === undefined ? undefined : await databaseOfThisProcess(SERVER_URL)

/** Declares the suite once per backend: the same tests on PGlite and on a real PostgreSQL. */
export function describeEachBackend (name: string, fn: (backend: Backend) => void): void {
  describe(`${name} [pglite]`, () => { fn('pglite') })
  describe(`${name} [postgres]`, { skip: skipPostgres }, () => { fn('postgres') })
}

/** Only where several connections are the point (real concurrency, several processes). */
export function describeMultiConnection (name: string, fn: () => void): void {
  describe(name, { skip: skipPostgres }, fn)
}

let sharedPglite: Promise<PGlite> | undefined
// An instance started from saved files keeps the process alive until it is closed.
after(async () => { await (await sharedPglite)?.close() })

/**
 * A migrated database in a schema of its own, dropped when the test ends.
 * PGlite: one in-memory instance per test process, a schema per test (tests in a file run one at a time).
 */
export async function testDb (t: TestContext, backend: Backend): Promise<Db> {
  const { db, dispose } = await scratchDb(backend)
  t.after(dispose)
  return db
}

/** As testDb, for a caller that ends it itself (a property test makes one per run). */
export async function scratchDb (backend: Backend): Promise<{ db: Db, dispose: () => Promise<void> }> {
  const schema = 't_' + randomBytes(6).toString('hex')
  const db = backend === 'postgres' ? await postgresDb(schema) : await schemaOnSharedPglite(schema)
  await migrate(db)
  return {
    db,
    dispose: async () => {
      await db.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {})
      await db.close()
    },
  }
}

async function postgresDb (schema: string): Promise<Db> {
  if (POSTGRES_URL === undefined) throw new Error('TEST_DATABASE_URL is not set')
  mkdirSync(new URL('.', MARKER), { recursive: true })
  appendFileSync(MARKER, '.')
  const admin = openPostgres(POSTGRES_URL, { max: 1 })
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.close()
  return openPostgres(POSTGRES_URL, { schema, max: 10 })
}

let pgliteSchemaInUse: string | undefined

async function schemaOnSharedPglite (schema: string): Promise<Db> {
  // One connection, one search_path: a second live schema would silently take over the first one's queries.
  if (pgliteSchemaInUse !== undefined) throw new Error(`PGlite tests get one database at a time; ${pgliteSchemaInUse} is still open`)
  pgliteSchemaInUse = schema
  sharedPglite ??= freshPglite()
  const pg = await sharedPglite
  await pg.exec(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}, public`)
  // The instance is shared by the whole test file.
  return pgliteDb(pg, async () => {
    await pg.exec('SET search_path TO public')
    pgliteSchemaInUse = undefined
  })
}

const PGLITE_VERSION = (JSON.parse(readFileSync(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')) as { version: string }).version
const INITDB = new URL(`../artifacts/pglite-${PGLITE_VERSION}-initdb.tar`, import.meta.url)

/**
 * A new in-memory PGlite. Its initdb takes seconds (most of a small test file's time), so
 * the first test process keeps the new cluster's files and every later one starts from them.
 */
export async function freshPglite (): Promise<PGlite> {
  let saved: Buffer | undefined
  try { saved = readFileSync(INITDB) } catch {}
  if (saved !== undefined) return await PGlite.create(undefined, { extensions: PGLITE_EXTENSIONS, loadDataDir: new Blob([saved]) })
  const pg = await PGlite.create(undefined, { extensions: PGLITE_EXTENSIONS })
  const files = Buffer.from(await (await pg.dumpDataDir('none')).arrayBuffer())
  mkdirSync(new URL('.', INITDB), { recursive: true })
  const part = new URL(`${INITDB.href}.${process.pid}`)
  writeFileSync(part, files)
  renameSync(part, INITDB)
  return pg
}

const DATA_DIR = fileURLToPath(new URL(`../artifacts/pglite-${PGLITE_VERSION}-datadir`, import.meta.url))
const dataDirs: string[] = []
after(() => { for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true }) })

/**
 * A `file://` URL of a PGlite data directory of its own, past initdb, for a server process:
 * one that starts on it is ready seconds sooner than on `memory://`, which runs initdb each
 * time. Removed when the test file ends.
 */
export async function pgliteDataUrl (): Promise<string> {
  if (!existsSync(DATA_DIR)) {
    const part = `${DATA_DIR}.${process.pid}`
    mkdirSync(new URL('.', INITDB), { recursive: true })
    const pg = await PGlite.create(part, { extensions: PGLITE_EXTENSIONS })
    await pg.close()
    renameSync(part, DATA_DIR)
  }
  const dir = mkdtempSync(join(tmpdir(), 'token-pool-pglite-'))
  dataDirs.push(dir)
  cpSync(DATA_DIR, dir, { recursive: true })
  return `file://${dir}`
}

/** The URL a child process should use to reach the same PostgreSQL schema. */
export function postgresUrlFor (schema: string): string {
  if (POSTGRES_URL === undefined) throw new Error('TEST_DATABASE_URL is not set')
  const url = new URL(POSTGRES_URL)
  url.searchParams.set('options', `-c search_path=${schema},public`)
  return url.toString()
}

/** One connection held open, for statements a test runs between the pool's (a lock held where a race would fall). */
export function heldSession (db: Db): { s: Promise<Session>, end: () => Promise<void> } {
  let run!: (s: Session) => void
  const got = new Promise<Session>((resolve) => { run = resolve })
  let done!: () => void
  const finished = new Promise<void>((resolve) => { done = resolve })
  const held = db.withSession(async (s) => { run(s); await finished })
  return { s: got, end: async () => { done(); await held } }
}

/**
 * Whether a backend now waits for a lock that `held` holds: the race a test forces has begun.
 * Only `held`'s locks count, so another test file's lock waits on the same server don't.
 */
export async function someoneWaitsOn (db: Db, held: Session): Promise<boolean> {
  const [me] = await held.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  const [row] = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))', [me!.pid])
  return (row?.n ?? 0) > 0
}
