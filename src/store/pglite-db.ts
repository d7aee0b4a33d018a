import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { PGlite, type PGliteOptions } from '@electric-sql/pglite'
import { btree_gist as btreeGist } from '@electric-sql/pglite/contrib/btree_gist'
import { isNewDataDir } from './data-dir.js'
import { lockDataDir } from './data-dir-lock.js'
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
  if (dataDir === undefined) {
    const pg = await PGlite.create(undefined, options)
    return pgliteDb(pg, async () => { await pg.close() })
  }
  const unlock = await lockDataDir(dataDir)
  try {
    if (isNewDataDir(dataDir)) await initdbApart(dataDir)
    const pg = await PGlite.create(dataDir, options)
    return pgliteDb(pg, async () => {
      try {
        await pg.close()
      } finally {
        unlock()
      }
    })
  } catch (err) {
    unlock()
    throw err
  }
}

/**
 * initdb grows the WebAssembly heap by ~150 MB, which a WebAssembly memory never gives back
 * (not even to the OS once the instance is closed, nor when run in a worker thread): run it
 * in a child process that takes that memory with it. If the child fails, the caller's own
 * open runs initdb and reports the real error.
 */
export async function initdbApart (dataDir: string): Promise<void> {
  // Beside this module, as .ts under tsx (the child inherits --import tsx) or .js in dist.
  const script = fileURLToPath(import.meta.url).replace(/pglite-db\.(ts|js)$/, 'pglite-initdb.$1')
  await new Promise<void>((resolve) => {
    const child = fork(script, [dataDir], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
    child.once('error', () => { resolve() })
    child.once('exit', () => { resolve() })
  })
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
