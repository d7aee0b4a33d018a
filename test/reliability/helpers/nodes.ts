import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { Db } from '../../../src/store/db.js'
import { openPostgres } from '../../../src/store/pg-db.js'

const MAIN = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url))

/** A schema of its own on a real PostgreSQL, for server processes to share; dropped by drop(). */
export interface SharedSchema {
  schema: string
  /** a URL that puts a process in this schema, tagged with application_name = tag */
  urlFor: (tag: string) => string
  /** a connection for the test's own SQL checks */
  db: Db
  /** the application_name prefix of every node on this schema */
  tag: string
  drop: () => Promise<void>
}

export async function sharedSchema (baseUrl: string): Promise<SharedSchema> {
  const schema = 'r_' + randomBytes(6).toString('hex')
  const admin = openPostgres(baseUrl, { max: 1 })
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.close()
  const db = openPostgres(baseUrl, { schema, max: 4 })
  const urlFor = (tag: string) => {
    const url = new URL(baseUrl)
    url.searchParams.set('options', `-c search_path=${schema},public`)
    url.searchParams.set('application_name', tag)
    return url.toString()
  }
  return {
    schema,
    urlFor,
    db,
    tag: `tp-${schema}`,
    drop: async () => {
      await db.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {})
      await db.close()
    },
  }
}

export interface Node {
  name: string
  url: string
  child: ChildProcess
  output: () => string
  /** exit code, or the signal's name */
  exited: Promise<number | string>
  /** SIGKILL unless already gone; for t.after */
  kill: () => Promise<void>
}

/** Starts `token-pool serve` as a real process on `port` and waits until it is ready. */
export async function startNode (name: string, port: number, env: Record<string, string>): Promise<Node> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: { ...process.env, LOG_LEVEL: 'warn', HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  child.stderr?.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-20_000) })
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => { resolve(code ?? signal ?? -1) }))
  const url = `http://127.0.0.1:${port}`
  const node: Node = {
    name,
    url,
    child,
    output: () => out,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited early:\n${out}`)
    try {
      if ((await fetch(`${url}/readyz`)).ok) return node
    } catch {}
    if (i > 600) {
      await node.kill()
      throw new Error(`${name} did not start:\n${out}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export interface Answer {
  status: number
  body: any
  headers: Headers
}

/** One real HTTP request with a JSON body; a network failure comes back as status 0. */
export async function call (url: string, method: string, body?: unknown, timeoutMs = 30_000): Promise<Answer> {
  try {
    const res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    })
    const text = await res.text()
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
  } catch (err) {
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    return { status: 0, body: { error: String(err), cause: cause?.code ?? cause?.message }, headers: new Headers() }
  }
}

/** Runs tasks with at most `width` at once. */
export async function inParallel<T> (items: T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      await fn(items[i]!, i)
    }
  }))
}

/**
 * Usages that begin before an earlier usage of the same token has ended (must always be
 * none). One sort per token instead of a self-join, so it stays fast on 100,000s of rows.
 */
export async function overlapping (db: Db): Promise<unknown[]> {
  return await db.query(`
    SELECT id, token_id FROM (
      SELECT id, token_id, started_at,
             max(coalesce(released_at, expires_at)) OVER (
               PARTITION BY token_id ORDER BY started_at, id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_end
        FROM usages) u
     WHERE started_at < earlier_end`)
}

/** Tokens whose mirrored lease disagrees with the usage it names: a half-written change. */
export async function mirrorMismatches (db: Db): Promise<unknown[]> {
  return await db.query(`
    SELECT t.id FROM tokens t LEFT JOIN usages u ON u.id = t.lease_id
     WHERE t.lease_id IS NOT NULL AND (u.id IS NULL OR u.token_id <> t.id OR u.user_id <> t.lease_user_id
           OR u.started_at <> t.lease_started_at OR u.expires_at <> t.lease_expires_at)
    UNION ALL
    SELECT u.token_id FROM usages u JOIN tokens t ON t.id = u.token_id
     WHERE u.released_at IS NULL AND u.expires_at > now() AND t.lease_id IS DISTINCT FROM u.id`)
}

export interface Acknowledged {
  lease_id: number
  token_id: string
  user_id: string
  started_at: string
  expires_at: string
}

/** The acknowledged leases missing from the history, or recorded differently from what was answered. */
export async function lostLeases (db: Db, acked: Acknowledged[]): Promise<Acknowledged[]> {
  if (acked.length === 0) return []
  const rows = await db.query<{ id: number, token_id: string, user_id: string, started_at: Date, expires_at: Date }>(
    'SELECT id, token_id, user_id, started_at, expires_at FROM usages WHERE id = ANY($1::bigint[])',
    [acked.map((a) => a.lease_id)]
  )
  const byId = new Map(rows.map((r) => [r.id, r]))
  return acked.filter((a) => {
    const r = byId.get(a.lease_id)
    return r === undefined || r.token_id !== a.token_id || r.user_id !== a.user_id ||
      r.started_at.toISOString() !== a.started_at || r.expires_at.toISOString() !== a.expires_at
  })
}
