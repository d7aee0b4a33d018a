import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Whether servers run from the build (dist/, what `npm start` runs) rather than from src/ through tsx. */
export const runFrom = { dist: false }

export interface Server {
  url: string
  pid: number
  /** resident memory now, MB */
  rssMb: () => number
  stop: () => Promise<void>
}

export interface ServeOptions {
  port: number
  databaseUrl: string
  poolSize: number
  /** the ceiling route instead of the service */
  ceiling?: boolean
  env?: Record<string, string>
}

/** Starts `token-pool serve` (or the ceiling) as its own process and waits until it answers /readyz. */
export async function startServer (opts: ServeOptions): Promise<Server> {
  const args = opts.ceiling === true
    ? ['--import', 'tsx', 'bench/ceiling.ts']
    : runFrom.dist ? ['dist/cli/main.js', 'serve'] : ['--import', 'tsx', 'src/cli/main.ts', 'serve']
  let stderr = ''
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(opts.port),
      HOST: '127.0.0.1',
      DATABASE_URL: opts.databaseUrl,
      POOL_SIZE: String(opts.poolSize),
      // One log line per request costs a few % of throughput; a bench server logs warnings only.
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
      ...opts.env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const url = `http://127.0.0.1:${opts.port}`
  const deadline = Date.now() + 300_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server on ${opts.port} exited ${child.exitCode}: ${stderr}`)
    try {
      const res = await fetch(url + '/readyz')
      if (res.ok) break
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`server on ${opts.port} never got ready: ${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    url,
    pid: child.pid!,
    rssMb: () => rssMb(child.pid!),
    stop: async () => await stop(child),
  }
}

function rssMb (pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Math.round(Number(m[1]) / 1024)
  } catch {
    return 0
  }
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

/** Samples a server's RSS while a run goes on. */
export function sampleRss (server: Server, everyMs = 500): () => { maxMb: number, firstMb: number, lastMb: number } {
  const samples: number[] = [server.rssMb()]
  const timer = setInterval(() => samples.push(server.rssMb()), everyMs)
  return () => {
    clearInterval(timer)
    samples.push(server.rssMb())
    return { maxMb: Math.max(...samples), firstMb: samples[0] ?? 0, lastMb: samples.at(-1) ?? 0 }
  }
}
