import { closeSync, mkdirSync, openSync, readFileSync, realpathSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { codeOf } from './sqlstate.js'

const LOCK_FILE = 'token-pool.pid'
/** the directories this process holds */
const held = new Set<string>()

/** Another live process serves this PGlite directory. */
export class DataDirInUse extends Error {
  constructor (readonly dir: string, readonly pid: number) {
    super(`the data directory ${dir} is in use by process ${pid}: PGlite serves one process ` +
      `(point several servers at one PostgreSQL instead); if no such process serves it, delete ${join(dir, LOCK_FILE)}`)
  }
}

/**
 * PGlite serves one process: a second on the same directory would hand out the same tokens
 * and lease ids, and one's writes would overwrite the other's. As PostgreSQL does with
 * postmaster.pid: a file created exclusively, holding this process's id; one left by a
 * process that is gone (killed) is taken over. Returns what releases it.
 */
export async function lockDataDir (dir: string): Promise<() => void> {
  makeDir(dir)
  const file = join(dir, LOCK_FILE)
  const key = realpathSync(dir)
  // This process's own id in the file is a lock it holds, or one left by an earlier life
  // under the same id (a container's pid 1): which one, only this process can tell.
  if (held.has(key)) throw new DataDirInUse(dir, process.pid)
  for (let attempt = 0; ; attempt++) {
    if (createWithPid(file)) {
      held.add(key)
      return () => {
        held.delete(key)
        if (pidIn(file) === process.pid) unlinkSync(file)
      }
    }
    if (attempt >= 50) throw new Error(`could not take the lock ${file}`)
    const holder = pidIn(file)
    if (holder !== undefined && holder !== process.pid && alive(holder)) throw new DataDirInUse(dir, holder)
    // Empty: a process is writing it right now (after 100 ms, it is left over and stale).
    if (holder === undefined && attempt < 5) {
      await sleep(20)
      continue
    }
    await removeStale(file, holder)
  }
}

/**
 * Removes a stale lock, one process at a time (whoever makes the `.takeover` file), and
 * only if it still holds what was judged stale: two processes finding the same dead pid
 * never remove the lock one of them has just taken.
 */
async function removeStale (file: string, judged: number | undefined): Promise<void> {
  const takeover = `${file}.takeover`
  if (!createWithPid(takeover)) {
    // A takeover left by a process that died during it (it takes microseconds) goes after 10 s.
    try { if (Date.now() - statSync(takeover).mtimeMs > 10_000) unlinkSync(takeover) } catch {}
    await sleep(20)
    return
  }
  try {
    if (pidIn(file) === judged) unlinkSync(file)
  } catch (err) {
    if (codeOf(err) !== 'ENOENT') throw err
  } finally {
    unlinkSync(takeover)
  }
}

/** Creates `file` holding this process's id, if no such file exists: atomic (O_EXCL). */
function createWithPid (file: string): boolean {
  let fd: number
  try {
    fd = openSync(file, 'wx')
  } catch (err) {
    if (codeOf(err) === 'EEXIST') return false
    throw err
  }
  try {
    writeSync(fd, `${process.pid}\n`)
  } finally {
    closeSync(fd)
  }
  return true
}

/** mkdir -p, by hand: Node's recursive mkdir spins forever where a parent refuses (/proc). */
function makeDir (dir: string): void {
  try {
    mkdirSync(dir)
  } catch (err) {
    if (codeOf(err) === 'EEXIST') return
    if (codeOf(err) !== 'ENOENT' || dirname(dir) === dir) throw err
    makeDir(dirname(dir))
    mkdirSync(dir)
  }
}

function pidIn (file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10)
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, under another user.
    return codeOf(err) === 'EPERM'
  }
}
