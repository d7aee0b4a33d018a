import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Postgrator from 'postgrator'
import type { Db } from './db.js'

const MIGRATIONS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations')
// Any constant works; it only has to be the same for every node sharing the database.
const MIGRATION_LOCK = 74110001

/**
 * Brings the schema up to date. Safe when several nodes start at once on an empty
 * database: a session advisory lock lets one migrate while the others wait, then find nothing to do.
 * `target`, a migration number, stops there (tests build an older schema with it); default: the latest.
 */
export async function migrate (db: Db, target?: number): Promise<number> {
  return await db.withSession(async (session) => {
    await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      const [row] = await session.query<{ schema: string }>('SELECT current_schema() AS schema')
      const postgrator = new Postgrator({
        migrationPattern: join(MIGRATIONS, '*.sql'),
        driver: 'pg',
        schemaTable: `${row?.schema ?? 'public'}.schemaversion`,
        execQuery: async (query) => ({ rows: await session.query(query) }),
        // A multi-statement simple query is one implicit transaction: a file applies whole or not at all.
        execSqlScript: session.script,
      })
      const applied = await postgrator.migrate(target === undefined ? 'max' : String(target))
      return applied.length
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  })
}
