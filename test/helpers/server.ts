import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => { resolve(port) })
    })
    srv.on('error', reject)
  })
}

export interface Server {
  url: string
  child: ChildProcess
  output: () => string
  /** resolves with the exit code (or signal) */
  exited: Promise<number | string>
}

/** Starts `token-pool serve` as a real process and waits until it answers /healthz. */
export async function startServer (env: Record<string, string>): Promise<Server> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: { ...process.env, LOG_LEVEL: 'warn', HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => { resolve(code ?? signal ?? -1) }))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${out}`)
    try {
      if ((await fetch(`${url}/healthz`)).ok) break
    } catch {}
    if (i > 600) throw new Error(`server did not start:\n${out}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { url, child, output: () => out, exited }
}

export async function postJson (url: string, body: unknown): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() }
}
