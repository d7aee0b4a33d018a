import type { Config } from '../config.js'
import { openDb } from '../store/open.js'
import { migrate } from '../store/migrate.js'

export async function migrateCommand (config: Config): Promise<void> {
  const db = await openDb(config.databaseUrl)
  try {
    const applied = await migrate(db)
    console.log(applied === 0 ? 'schema is up to date' : `applied ${applied} migration(s)`)
  } finally {
    await db.close()
  }
}
