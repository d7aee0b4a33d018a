export interface SseEvent {
  id: string | undefined
  event: string
  data: string
}

/** A real EventSource-like reader over fetch: collects events, waits for the ones a test expects. */
export class SseClient {
  readonly events: SseEvent[] = []
  comments = 0
  ended = false
  private readonly waiters = new Set<() => void>()

  private constructor (private readonly abort: AbortController, private readonly onEvent?: (e: SseEvent) => void) {}

  /** With onEvent, events go there and are not kept (long runs); without, they collect in `events`. */
  static async open (url: string, headers: Record<string, string> = {}, onEvent?: (e: SseEvent) => void): Promise<SseClient> {
    const abort = new AbortController()
    const client = new SseClient(abort, onEvent)
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal })
    if (res.status !== 200 || res.body === null) {
      throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`)
    }
    if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) throw new Error('not an event stream')
    client.pump(res.body).catch(() => {})
    return client
  }

  /** Resolves with the first event (already received or to come) that matches, or rejects after timeoutMs. */
  async waitFor (match: (e: SseEvent) => boolean, timeoutMs = 10_000): Promise<SseEvent> {
    return await this.until(() => this.events.find(match), timeoutMs)
  }

  /** Resolves once n events have arrived. */
  async waitForCount (n: number, timeoutMs = 10_000): Promise<SseEvent[]> {
    return await this.until(() => (this.events.length >= n ? this.events.slice(0, n) : undefined), timeoutMs)
  }

  /** Resolves once n comment lines (heartbeats) have arrived. */
  async waitForComments (n: number, timeoutMs = 10_000): Promise<void> {
    await this.until(() => (this.comments >= n ? true : undefined), timeoutMs)
  }

  async waitForEnd (timeoutMs = 10_000): Promise<void> {
    await this.until(() => (this.ended ? true : undefined), timeoutMs)
  }

  close (): void {
    this.abort.abort()
  }

  private async until<T> (probe: () => T | undefined, timeoutMs: number): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      const check = () => {
        const found = probe()
        if (found === undefined) return false
        clearTimeout(timer)
        this.waiters.delete(onChange)
        resolve(found)
        return true
      }
      const onChange = () => { check() }
      const timer = setTimeout(() => {
        this.waiters.delete(onChange)
        reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.events.slice(-5))}`))
      }, timeoutMs)
      if (!check()) this.waiters.add(onChange)
    })
  }

  private async pump (body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let cut: number
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          this.parse(buffer.slice(0, cut))
          buffer = buffer.slice(cut + 2)
        }
        for (const w of [...this.waiters]) w()
      }
    } finally {
      this.ended = true
      for (const w of [...this.waiters]) w()
    }
  }

  private parse (block: string): void {
    const e: SseEvent = { id: undefined, event: 'message', data: '' }
    let hasData = false
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) { this.comments++; continue }
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'id') e.id = value
      else if (field === 'event') e.event = value
      else if (field === 'data') { e.data += (hasData ? '\n' : '') + value; hasData = true }
    }
    if (!hasData) return
    if (this.onEvent !== undefined) this.onEvent(e)
    else this.events.push(e)
  }
}
