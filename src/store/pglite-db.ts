import { PGlite } from '@electric-sql/pglite'
import { btree_gist as btreeGist } from '@electric-sql/pglite/contrib/btree_gist'
import type { Db, Session } from './db.js'

/** The extensions our migrations need, loaded into every PGlite instance. */
export const PGLITE_EXTENSIONS = { btree_gist: btreeGist }

/** PGlite: PostgreSQL in-process, in memory or in a directory. One connection, so statements queue. */
export async function openPglite (dataDir: string | undefined): Promise<Db> {
  const pg = await PGlite.create(dataDir, { extensions: PGLITE_EXTENSIONS })
  return pgliteDb(pg, async () => { await pg.close() })
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
