import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { openPostgres } from '../../../src/store/pg-db.js'
import { pgliteDataUrl, POSTGRES_URL, postgresUrlFor, type Backend } from '../../helpers/db.js'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const MAIN = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url))

export interface Server {
  url: string
  /** everything the server wrote to stdout so far */
  output: () => string
  stop: () => Promise<void>
}

/**
 * `token-pool serve` as its own process, as an operator runs it: on a PGlite data directory
 * of its own unless env says otherwise.
 * Resolves once it says it listens. `wrap` runs it under another program (e.g. `script` for a terminal).
 */
export async function startServer (port: number, env: Record<string, string> = {}, wrap?: (argv: string[]) => string[]): Promise<Server> {
  const argv = [process.execPath, '--import', 'tsx', MAIN, 'serve']
  const [cmd, ...args] = wrap === undefined ? argv : wrap(argv)
  const databaseUrl = env.DATABASE_URL ?? await pgliteDataUrl()
  const child = spawn(cmd!, args, {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  // Ready when /readyz answers: log lines may be pretty, JSON or filtered out by LOG_LEVEL.
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${err}${out}`)
    try {
      if ((await fetch(url + '/readyz')).ok) break
    } catch {}
    if (i > 600) throw new Error(`server not ready after 60 s: ${err}${out}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    url,
    output: () => out,
    stop: async () => { await stop(child, exited) },
  }
}

async function stop (child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return
  // Its own process group (detached): a wrapper and the server inside it both get the signal.
  process.kill(-child.pid, 'SIGTERM')
  const timer = setTimeout(() => { if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL') }, 15_000)
  await exited
  clearTimeout(timer)
}

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** One `token-pool …` command as a subprocess, as a script would run it. */
export function cli (args: string[], env: Record<string, string | undefined> = {}): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: defined({ ...process.env, TOKEN_POOL_URL: undefined, ADMIN_TOKEN: undefined, ...env }),
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/**
 * Many commands that don't depend on each other, run at once (a command is mostly Node's
 * start-up): their results in the order given.
 */
export async function cliEach (commands: string[][], env: Record<string, string | undefined> = {}): Promise<Run[]> {
  const run = promisify(execFile)
  return await Promise.all(commands.map(async (args) => {
    try {
      const r = await run(process.execPath, ['--import', 'tsx', MAIN, ...args], {
        cwd: ROOT,
        env: defined({ ...process.env, TOKEN_POOL_URL: undefined, ADMIN_TOKEN: undefined, ...env }),
        encoding: 'utf8',
        timeout: 60_000,
      })
      return { code: 0, stdout: r.stdout, stderr: r.stderr }
    } catch (e) {
      const failed = e as { code?: number | string, stdout?: string, stderr?: string }
      if (typeof failed.code !== 'number') throw e
      return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' }
    }
  }))
}

const defined = (env: Record<string, string | undefined>) =>
  Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined))

/** A server's database: a PGlite data directory of its own, or a fresh schema of TEST_DATABASE_URL (dropped at the end). */
export async function serverDatabase (backend: Backend, prefix: string): Promise<{ url: string, drop: () => Promise<void> }> {
  if (backend === 'pglite' || POSTGRES_URL === undefined) return { url: await pgliteDataUrl(), drop: async () => {} }
  const schema = prefix + randomBytes(6).toString('hex')
  const db = openPostgres(POSTGRES_URL, { max: 1 })
  await db.query(`CREATE SCHEMA ${schema}`)
  return {
    url: postgresUrlFor(schema),
    drop: async () => {
      await db.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {})
      await db.close()
    },
  }
}
