import { dataDirOf } from './data-dir.js'
import type { Db } from './db.js'
import { openPglite } from './pglite-db.js'
import { openPostgres, type PgOptions } from './pg-db.js'

/** DATABASE_URL → a Db: unset is PGlite in ./data, memory:// is PGlite in memory, else PostgreSQL. */
export async function openDb (url: string | undefined, opts: PgOptions = {}): Promise<Db> {
  if (url === 'memory://') return await openPglite(undefined)
  const dir = dataDirOf(url)
  return dir !== undefined ? await openPglite(dir) : openPostgres(url!, opts)
}
