import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite, type PGliteOptions } from '@electric-sql/pglite'
import { btree_gist as btreeGist } from '@electric-sql/pglite/contrib/btree_gist'
import type { Db, Session } from './db.js'

/** The extensions our migrations need, loaded into every PGlite instance. */
export const PGLITE_EXTENSIONS = { btree_gist: btreeGist }

// PostgreSQL's shared buffers live in the WebAssembly heap, which never shrinks: 64 MB
// instead of the default 128 MB (32 MB cost a quarter of the allocations at 100,000 tokens;
// BENCHMARKS.md, "The embedded database's memory").
const SHARED_BUFFERS = '64MB'

/** PGlite: PostgreSQL in-process, in memory or in a directory. One connection, so statements queue. */
export async function openPglite (dataDir: string | undefined): Promise<Db> {
  const options: PGliteOptions = {
    extensions: PGLITE_EXTENSIONS,
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`],
  }
  // A new directory is made by initdb inside the first instance, whose heap keeps the
  // ~400 MB that took for the life of the process: open it again, and let that one go.
  const fresh = dataDir !== undefined && !existsSync(join(dataDir, 'PG_VERSION'))
  let pg = await PGlite.create(dataDir, options)
  if (fresh) {
    await pg.close()
    pg = await PGlite.create(dataDir, options)
  }
  const opened = pg
  return pgliteDb(opened, async () => { await opened.close() })
}

/** The Db seam over an open PGlite instance; `close` decides what closing means (tests share one instance). */
export function pgliteDb (pg: PGlite, close: () => Promise<void>): Db {
  const session: Session = {
    query: async (text, values) => (await pg.query(text, values)).rows as never,
    script: async (sql) => { await pg.exec(sql) },
  }
  return {
    kind: 'pglite',
    query: session.query,
    withSession: async (fn) => await fn(session),
    listen: async (channel, onMessage) => await pg.listen(channel, onMessage),
    close,
  }
}
