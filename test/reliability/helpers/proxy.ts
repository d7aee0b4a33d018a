import { createConnection, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy in front of PostgreSQL, to take the database away from a node without
 * touching the PostgreSQL that others share: cut() refuses and drops connections (a
 * stopped server), blackhole() accepts and forwards nothing (a partition), restore() heals.
 */
export class DbProxy {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private mode: 'open' | 'blackhole' = 'open'

  constructor (readonly port: number, private readonly target: { host: string, port: number }) {}

  async start (): Promise<void> {
    this.server = createServer((client) => { this.accept(client) })
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject)
      this.server!.listen(this.port, '127.0.0.1', () => { resolve() })
    })
  }

  /** The database is gone: connections drop, new ones are refused. */
  async cut (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    const server = this.server
    this.server = undefined
    if (server !== undefined) await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }

  /** The database stops answering: bytes go nowhere, nothing is closed. */
  blackhole (): void {
    this.mode = 'blackhole'
    for (const s of this.sockets) s.pause()
  }

  async restore (): Promise<void> {
    this.mode = 'open'
    // Connections that sat in the black hole are dead to their clients anyway.
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    if (this.server === undefined) await this.start()
  }

  async close (): Promise<void> {
    await this.cut()
  }

  private accept (client: Socket): void {
    this.sockets.add(client)
    client.on('close', () => { this.sockets.delete(client) })
    client.on('error', () => {})
    if (this.mode === 'blackhole') {
      client.pause()
      return
    }
    const upstream = createConnection(this.target)
    this.sockets.add(upstream)
    upstream.on('close', () => { this.sockets.delete(upstream); client.destroy() })
    upstream.on('error', () => {})
    client.on('close', () => { upstream.destroy() })
    client.on('data', (d) => { if (this.mode === 'open') upstream.write(d) })
    upstream.on('data', (d) => { if (this.mode === 'open') client.write(d) })
  }
}
