import pg from 'pg'
import type { Db, Session } from './db.js'

// bigint (int8) columns here are lease ids and counts, far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))

export interface PgOptions {
  max?: number
  /** a schema to work in (tests give each test its own) */
  schema?: string
  /** ms a statement may run before PostgreSQL cancels it */
  statementTimeoutMs?: number
  /** ms to wait for a connection from the pool, or for a new one to open */
  connectionTimeoutMs?: number
}

// One slow query can't hang the service: the server cancels a statement after
// STATEMENT_TIMEOUT_MS; should the server itself stop answering (a partition, a stopped
// host), the client gives up QUERY_GRACE_MS later and drops that connection.
const STATEMENT_TIMEOUT_MS = 5_000
const QUERY_GRACE_MS = 2_000
const CONNECTION_TIMEOUT_MS = 3_000

/** A real PostgreSQL through a pg.Pool, plus one dedicated, self-healing LISTEN connection. */
export function openPostgres (url: string, opts: PgOptions = {}): Db {
  const statementTimeout = opts.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS
  // Options in the URL (?options=-c search_path=…) would replace ours wholesale: join them.
  const parsed = new URL(url)
  const urlOptions = parsed.searchParams.get('options') ?? ''
  parsed.searchParams.delete('options')
  const options = [
    urlOptions,
    opts.schema ? `-c search_path=${opts.schema},public` : '',
    `-c statement_timeout=${statementTimeout}`,
    // A session left inside a transaction would hold its row locks: the server ends it.
    `-c idle_in_transaction_session_timeout=${statementTimeout * 2}`,
  ].filter(Boolean).join(' ')
  const connection = {
    connectionString: parsed.toString(),
    options,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS,
    // Notice a vanished server on an idle connection (the LISTEN one above all).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  }
  const pool = new pg.Pool({
    ...connection,
    query_timeout: statementTimeout + QUERY_GRACE_MS,
    max: opts.max ?? 10,
    idleTimeoutMillis: 30_000,
  })
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on('error', () => {})
  const listeners = new Set<() => Promise<void>>()

  return {
    kind: 'postgres',
    query: async (text, values) => (await pool.query(text, values)).rows,
    withSession: async (fn) => {
      const client = await pool.connect()
      const session: Session = {
        query: async (text, values) => (await client.query(text, values)).rows,
        script: async (sql) => { await client.query(sql) },
      }
      try {
        return await fn(session)
      } finally {
        client.release()
      }
    },
    listen: async (channel, onMessage, onReconnect) => {
      let client: pg.Client | undefined
      let stopped = false
      let retry: NodeJS.Timeout | undefined
      const connect = async (isReconnect: boolean): Promise<void> => {
        const c = new pg.Client(connection)
        c.on('error', () => {})
        c.on('end', () => {
          if (stopped) return
          retry = setTimeout(() => { connect(true).catch(() => {}) }, 500)
        })
        c.on('notification', (msg) => { if (msg.channel === channel) onMessage(msg.payload ?? '') })
        try {
          await c.connect()
          await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`)
        } catch (err) {
          c.removeAllListeners('end')
          await c.end().catch(() => {})
          if (!isReconnect) throw err
          if (!stopped) retry = setTimeout(() => { connect(true).catch(() => {}) }, 1000)
          return
        }
        client = c
        if (isReconnect) onReconnect?.()
      }
      await connect(false)
      const stop = async () => {
        stopped = true
        clearTimeout(retry)
        listeners.delete(stop)
        await client?.end().catch(() => {})
      }
      listeners.add(stop)
      return stop
    },
    close: async () => {
      await Promise.all([...listeners].map(async (stop) => await stop()))
      await pool.end()
    },
  }
}
