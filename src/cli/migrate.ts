import type { Config } from '../config.js'
import { openDb } from '../store/open.js'
import { migrate } from '../store/migrate.js'
import { databaseProblem } from './startup.js'

export async function migrateCommand (config: Config): Promise<void> {
  const db = await openDb(config.databaseUrl).catch((err: unknown) => { throw databaseProblem(config.databaseUrl, err) })
  try {
    const applied = await migrate(db).catch((err: unknown) => { throw databaseProblem(config.databaseUrl, err) })
    console.log(applied === 0 ? 'schema is up to date' : `applied ${applied} migration(s)`)
  } finally {
    await db.close()
  }
}
