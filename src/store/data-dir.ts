import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// Kept apart from pglite-db.ts, which loads PGlite: the CLI says what serve will open
// before anything heavy is loaded.

/** The PGlite directory DATABASE_URL names: ./data when unset, a file:// URL's path; else undefined. */
export function dataDirOf (url: string | undefined): string | undefined {
  if (url === undefined) return resolve('data')
  return url.startsWith('file://') ? fileURLToPath(url) : undefined
}

/** Whether PGlite has yet to make this directory (initdb): it holds no PG_VERSION. */
export function isNewDataDir (dir: string): boolean {
  return !existsSync(join(dir, 'PG_VERSION'))
}
