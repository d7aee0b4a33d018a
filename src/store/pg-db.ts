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
  /** ms to wait for a connection from the pool */
  connectionTimeoutMs?: number
}

/** A real PostgreSQL through a pg.Pool, plus one dedicated, self-healing LISTEN connection. */
export function openPostgres (url: string, opts: PgOptions = {}): Db {
  const options = [
    opts.schema ? `-c search_path=${opts.schema},public` : '',
    `-c statement_timeout=${opts.statementTimeoutMs ?? 10_000}`,
  ].filter(Boolean).join(' ')
  const connection = { connectionString: url, options }
  const pool = new pg.Pool({
    ...connection,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 5_000,
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
