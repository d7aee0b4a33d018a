import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Db } from './db.js'
import { openPglite } from './pglite-db.js'
import { openPostgres, type PgOptions } from './pg-db.js'

/** DATABASE_URL → a Db: unset is PGlite in ./data, memory:// is PGlite in memory, else PostgreSQL. */
export async function openDb (url: string | undefined, opts: PgOptions = {}): Promise<Db> {
  if (url === undefined) return await openPglite(resolve('data'))
  if (url === 'memory://') return await openPglite(undefined)
  if (url.startsWith('file://')) return await openPglite(fileURLToPath(url))
  return openPostgres(url, opts)
}
