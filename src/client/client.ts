import type { ErrorCode } from '../domain/errors.js'
import { TokenPoolError, TokenPoolUnreachableError } from './errors.js'
import { parseSse } from './sse.js'
import type { Cleared, ClearedJson, EndedLease, Lease, PoolEvent, PoolMeta, Stats, TokenDetail, TokenStatus, TokenSummary, Usage } from './types.js'

export interface ClientOptions {
  /** the service's base URL; default http://127.0.0.1:4000 */
  url?: string
  /** sent as `Authorization: Bearer …` (needed by clear when the service sets ADMIN_TOKEN) */
  adminToken?: string
  /** ms to wait for each answer (not for the event stream); default 10 000 */
  timeoutMs?: number
  /** a fetch of your own (proxies, tests); default the global fetch */
  fetch?: typeof fetch
}

export interface CallOptions {
  signal?: AbortSignal
  /** sent as x-request-id; the service logs it with the request */
  requestId?: string
}

export interface EventsOptions {
  /** start after this event (replayed from the service's kept window) */
  lastEventId?: string
  /** stops the stream; so does leaving the for-await loop */
  signal?: AbortSignal
  /** reconnect (with Last-Event-ID) when the stream drops; default true */
  reconnect?: boolean
}

const DEFAULT_URL = 'http://127.0.0.1:4000'

/**
 * A typed client for Token Pool's HTTP API. Methods return the answer's `data`; failures
 * throw TokenPoolError (the contract's code, status, details, Retry-After) or
 * TokenPoolUnreachableError.
 */
export class TokenPoolClient {
  readonly url: string
  private readonly adminToken: string | undefined
  private readonly timeoutMs: number
  private readonly fetch: typeof fetch

  constructor (options: ClientOptions = {}) {
    this.url = (options.url ?? DEFAULT_URL).replace(/\/+$/, '')
    this.adminToken = options.adminToken
    this.timeoutMs = options.timeoutMs ?? 10_000
    this.fetch = options.fetch ?? globalThis.fetch
  }

  /** Leases the least-used free token, or returns the lease the user already holds (unchanged). */
  async allocate (userId: string, options?: CallOptions): Promise<Lease> {
    return (await this.call<{ data: Lease }>('POST', '/api/tokens/allocate', { user_id: userId }, options)).data
  }

  /** Gives a token back before its lease ends; TokenPoolError not_holder when the user does not hold it now. */
  async release (tokenId: string, userId: string, options?: CallOptions): Promise<EndedLease> {
    return (await this.call<{ data: EndedLease }>('POST', `/api/tokens/${encodeURIComponent(tokenId)}/release`, { user_id: userId }, options)).data
  }

  /** Every token in creation order (or only active/available ones), with the whole pool's counts. */
  async list (filter: { status?: TokenStatus } = {}, options?: CallOptions): Promise<{ tokens: TokenSummary[], meta: PoolMeta }> {
    const query = filter.status === undefined ? '' : `?status=${encodeURIComponent(filter.status)}`
    const body = await this.call<{ data: TokenSummary[], meta: PoolMeta }>('GET', `/api/tokens${query}`, undefined, options)
    return { tokens: body.data, meta: body.meta }
  }

  /** One token and its active lease. */
  async get (tokenId: string, options?: CallOptions): Promise<TokenDetail> {
    return (await this.call<{ data: TokenDetail }>('GET', `/api/tokens/${encodeURIComponent(tokenId)}`, undefined, options)).data
  }

  /** One page of a token's usages, newest first. */
  async historyPage (tokenId: string, page: { limit?: number, cursor?: string } = {}, options?: CallOptions): Promise<{ usages: Usage[], nextCursor: string | null }> {
    const params = new URLSearchParams()
    if (page.limit !== undefined) params.set('limit', String(page.limit))
    if (page.cursor !== undefined) params.set('cursor', page.cursor)
    const query = params.size === 0 ? '' : `?${params.toString()}`
    const body = await this.call<{ data: { usages: Usage[] }, meta: { next_cursor: string | null } }>(
      'GET', `/api/tokens/${encodeURIComponent(tokenId)}/history${query}`, undefined, options)
    return { usages: body.data.usages, nextCursor: body.meta.next_cursor }
  }

  /** Every usage of a token, newest first, fetching pages of `limit` as the loop goes. */
  async * history (tokenId: string, page: { limit?: number } = {}, options?: CallOptions): AsyncGenerator<Usage, void, undefined> {
    let cursor: string | undefined
    do {
      const result = await this.historyPage(tokenId, { limit: page.limit, cursor }, options)
      yield * result.usages
      cursor = result.nextCursor ?? undefined
    } while (cursor !== undefined)
  }

  /** Ends every active lease now (admin). */
  async clear (options?: CallOptions): Promise<ClearedJson> {
    return (await this.call<Cleared>('POST', '/api/tokens/clear', undefined, options)).data
  }

  /** Usage statistics of the current window. */
  async stats (options?: CallOptions): Promise<Stats> {
    return (await this.call<{ data: Stats }>('GET', '/api/stats', undefined, options)).data
  }

  /** Whether the service can reach its database (GET /readyz). */
  async ready (options?: CallOptions): Promise<boolean> {
    try {
      await this.call('GET', '/readyz', undefined, options)
      return true
    } catch (err) {
      if (err instanceof TokenPoolError && err.status === 503) return false
      throw err
    }
  }

  /**
   * Every change to the pool, from every node, as it happens (GET /api/events). Reconnects
   * with Last-Event-ID when the stream drops, so no event is missed within the service's
   * kept window. Leave the loop (or abort the signal) to stop.
   */
  async * events (options: EventsOptions = {}): AsyncGenerator<PoolEvent, void, undefined> {
    const stop = new AbortController()
    const signal = options.signal === undefined ? stop.signal : AbortSignal.any([stop.signal, options.signal])
    let lastEventId = options.lastEventId
    let retryMs = 1000
    try {
      while (!signal.aborted) {
        // One controller per connection: leaving it (the loop ended, or the stream dropped) aborts it.
        const connection = new AbortController()
        let res: Response
        try {
          res = await this.fetch(this.url + '/api/events', {
            headers: { accept: 'text/event-stream', ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) },
            signal: AbortSignal.any([signal, connection.signal]),
          })
        } catch (err) {
          if (signal.aborted) return
          if (options.reconnect === false) throw new TokenPoolUnreachableError(this.url, err)
          await sleep(retryMs, signal)
          continue
        }
        if (!res.ok || res.body === null) {
          const err = await toError(res)
          // Busy or briefly without its database: come back later, as for a dropped stream.
          const transient = err.status === 429 || err.status >= 500
          if (!transient || options.reconnect === false) throw err
          await sleep(err.retryAfterSeconds === undefined ? retryMs : err.retryAfterSeconds * 1000, signal)
          continue
        }
        const messages = parseSse(res.body)
        try {
          for (;;) {
            const { value: message, done } = await messages.next()
            if (done) break
            if (message.retry !== undefined) retryMs = message.retry
            if (message.id !== undefined) lastEventId = message.id
            if (message.id !== undefined && isEventType(message.event) && message.data !== '') {
              yield { id: message.id, type: message.event, data: JSON.parse(message.data) } as PoolEvent
            }
          }
        } catch (err) {
          if (signal.aborted) return
          if (options.reconnect === false) throw new TokenPoolUnreachableError(this.url, err)
        } finally {
          // Leaving the loop (or a dropped stream) ends this connection for good.
          connection.abort()
          await messages.return(undefined)
        }
        if (options.reconnect === false) return
        await sleep(retryMs, signal)
      }
    } finally {
      stop.abort()
    }
  }

  private async call<T> (method: string, path: string, body: unknown, options: CallOptions = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.adminToken !== undefined) headers.authorization = `Bearer ${this.adminToken}`
    if (options.requestId !== undefined) headers['x-request-id'] = options.requestId
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
    let res: Response
    try {
      res = await this.fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal })
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason
      throw new TokenPoolUnreachableError(this.url, err)
    }
    if (!res.ok) throw await toError(res)
    try {
      return await res.json() as T
    } catch (err) {
      throw new TokenPoolError({ code: 'unexpected_response', status: res.status, message: `answer is not JSON: ${(err as Error).message}`, requestId: res.headers.get('x-request-id') ?? undefined })
    }
  }
}

const EVENT_TYPES = new Set(['allocated', 'released', 'cleared'])
const isEventType = (s: string): s is PoolEvent['type'] => EVENT_TYPES.has(s)

async function toError (res: Response): Promise<TokenPoolError> {
  const retryAfter = Number(res.headers.get('retry-after') ?? NaN)
  const common = {
    status: res.status,
    retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : undefined,
    requestId: res.headers.get('x-request-id') ?? undefined,
  }
  const text = await res.text().catch(() => '')
  try {
    const { error } = JSON.parse(text) as { error?: { code?: unknown, message?: unknown, details?: unknown } }
    if (typeof error?.code === 'string' && typeof error.message === 'string') {
      return new TokenPoolError({ ...common, code: error.code as ErrorCode, message: error.message, details: error.details })
    }
  } catch {}
  return new TokenPoolError({ ...common, code: 'unexpected_response', message: `HTTP ${res.status}: ${text.slice(0, 200) || res.statusText}` })
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done () {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}
