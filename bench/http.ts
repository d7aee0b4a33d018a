import { Agent, request } from 'node:http'

/**
 * A bare keep-alive HTTP client for the hand-written flows (bench/flows.ts): one socket
 * per worker, and a streamed answer's server-sent events handed over as they arrive.
 */
export interface SseEvent {
  event: string
  data: string
}

export interface Answer {
  status: number
  /** the content-type header, '' when absent */
  type: string
  body: string
  /** the events of a text/event-stream answer, in order */
  events: SseEvent[]
}

export interface PostOptions {
  accept?: string
  /** called as each event arrives, before the answer ends */
  onEvent?: (e: SseEvent) => void
}

export class Http {
  private readonly agent: Agent

  constructor (sockets: number) {
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })
  }

  async post (base: string, path: string, body: unknown, opts: PostOptions = {}): Promise<Answer> {
    const url = new URL(path, base)
    const payload = JSON.stringify(body)
    return await new Promise<Answer>((resolve, reject) => {
      const req = request({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: this.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...(opts.accept === undefined ? {} : { accept: opts.accept }),
        },
      }, (res) => {
        const type = res.headers['content-type'] ?? ''
        const streamed = type.includes('text/event-stream')
        const events: SseEvent[] = []
        let body = ''
        let pending = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
          if (!streamed) return
          pending += chunk
          for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
            const e = parseEvent(pending.slice(0, end))
            pending = pending.slice(end + 2)
            events.push(e)
            opts.onEvent?.(e)
          }
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type, body, events }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(payload)
    })
  }

  close (): void {
    this.agent.destroy()
  }
}

function parseEvent (block: string): SseEvent {
  let event = 'message'
  const data: string[] = []
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim()
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
  }
  return { event, data: data.join('\n') }
}
