import { createServer } from 'node:net'
import type { SettingChange } from '../domain/types.js'
import { dataDirOf, isNewDataDir } from '../store/data-dir.js'

/**
 * Why HOST:PORT can't be listened on, as one line for a person; undefined when it can.
 * Checked before the database starts (PGlite takes seconds), so a busy port fails at once
 * rather than after the wait, with a stack trace.
 */
export async function listenProblem (host: string, port: number): Promise<string | undefined> {
  return await new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(`port ${port} on ${host} is in use (set PORT or --port)`)
      else if (err.code === 'EACCES') resolve(`port ${port} on ${host} needs more privileges (set PORT or --port)`)
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') resolve(`host ${host} is not an address of this machine (set HOST or --host)`)
      else reject(err)
    })
    probe.listen({ host, port, exclusive: true }, () => { probe.close(() => { resolve(undefined) }) })
  })
}

const SLOW = 'this can take a minute on a slow machine'

/** What `serve` is about to open, said before the wait; never the password. */
export function describeDatabase (url: string | undefined): string {
  const where = whereIs(url)
  // Making a new database (initdb) is the slow part: a minute was seen on a busy machine.
  if (url === 'memory://') return `creating the embedded database ${where} (${SLOW})`
  const dir = dataDirOf(url)
  if (dir !== undefined) {
    return isNewDataDir(dir) ? `creating the embedded database ${where} (first start only; ${SLOW})` : `starting the embedded database (PGlite ${where})`
  }
  return `connecting to PostgreSQL ${where}`
}

/** A failure to start that is the setting's or the environment's, not a bug: one line, no stack. */
export class StartupError extends Error {}

/** Opening or migrating the database failed: say which one (never the password) and why. */
export function databaseProblem (url: string | undefined, err: unknown): StartupError {
  return new StartupError(`cannot use the database ${whereIs(url)} (DATABASE_URL): ${err instanceof Error ? err.message : String(err)}`)
}

/** Where DATABASE_URL points, for a person: a directory, memory, or host:port/database. */
function whereIs (url: string | undefined): string {
  if (url === undefined) return 'in ./data'
  if (url === 'memory://') return 'in memory'
  if (url.startsWith('file://')) return `in ${new URL(url).pathname}`
  const { hostname, port, pathname } = new URL(url)
  return `at ${hostname}:${port || 5432}${pathname}`
}

/** Setting changes for a person, named as the API shows them: `size 5 → 100, user_quota 2 → unset`. */
export function describeChanges (changes: SettingChange[]): string {
  return changes.map((c) => `${c.setting} ${c.from ?? 'unset'} → ${c.to ?? 'unset'}`).join(', ')
}
