import { ERROR_CODES, type ErrorCode } from '../domain/errors.js'
import { TokenPoolError, TokenPoolUnreachableError } from './errors.js'
import type { CallOptions, QueueState } from './options.js'
import { parseSse, type SseMessage } from './sse.js'

/** How the client reaches the service: one fetch per call, errors in the contract's shape. Internal. */
export class Transport {
  constructor (
    readonly url: string,
    private readonly adminToken: string | undefined,
    readonly timeoutMs: number,
    readonly fetch: typeof globalThis.fetch
  ) {}

  /** The Authorization header, when the client has an admin token. */
  auth (): Record<string, string> {
    return this.adminToken === undefined ? {} : { authorization: `Bearer ${this.adminToken}` }
  }

  /** The answer's JSON body; the timeout (timeoutMs, plus extraMs) covers the whole answer. */
  async call<T> (method: string, path: string, body: unknown, options: CallOptions = {}, extraMs = 0): Promise<T> {
    const timeout = AbortSignal.timeout(this.timeoutMs + extraMs)
    const res = await this.send(method, path, body, options, timeout, 'application/json')
    return await this.json<T>(res, options, timeout)
  }

  /**
   * An allocation that may wait in the pool's queue (rule 12): the service answers plain JSON
   * when it doesn't queue, or, once queued, a text/event-stream of `queued` events and then one
   * `allocated` (the lease) or `error` (thrown as the TokenPoolError a plain answer would give).
   * The timeout covers the wait, plus timeoutMs.
   */
  async waitFor<T> (path: string, body: unknown, waitSeconds: number, onQueued: ((state: QueueState) => void) | undefined, options: CallOptions = {}): Promise<T> {
    const timeout = AbortSignal.timeout(this.timeoutMs + waitSeconds * 1000)
    const res = await this.send('POST', path, body, options, timeout, 'text/event-stream, application/json')
    const requestId = res.headers.get('x-request-id') ?? undefined
    if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream') || res.body === null) {
      return await this.json<T>(res, options, timeout)
    }
    const unexpected = (message: string) => new TokenPoolError({ code: 'unexpected_response', status: res.status, message, requestId })
    const messages = parseSse(res.body)
    try {
      for (;;) {
        let next: IteratorResult<SseMessage>
        try {
          next = await messages.next()
        } catch (err) {
          if (options.signal?.aborted === true) throw options.signal.reason
          throw new TokenPoolUnreachableError(this.url, timeout.aborted ? timeout.reason : err)
        }
        if (next.done === true) throw new TokenPoolUnreachableError(this.url, new Error('the stream ended before its answer'))
        const { event, data: text } = next.value
        if (event !== 'queued' && event !== 'allocated' && event !== 'error') continue
        let data: unknown
        try {
          data = JSON.parse(text)
        } catch (err) {
          throw unexpected(`a ${event} event is not JSON: ${(err as Error).message}`)
        }
        if (event === 'queued') {
          const q = data as { position: number, waiting: number, estimated_grant_at: string | null }
          onQueued?.({ position: q.position, waiting: q.waiting, estimatedGrantAt: q.estimated_grant_at === null ? null : new Date(q.estimated_grant_at) })
        } else if (event === 'allocated') {
          return { data } as T
        } else {
          throw streamedError(data, requestId) ?? unexpected(`an error event without an error: ${text.slice(0, 200)}`)
        }
      }
    } finally {
      // Leaving early (onQueued threw, or the signal) closes the connection: the service takes the request out of its queue.
      await messages.return(undefined)
    }
  }

  private async json<T> (res: Response, options: CallOptions, timeout: AbortSignal): Promise<T> {
    try {
      return await res.json() as T
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason
      if (timeout.aborted) throw new TokenPoolUnreachableError(this.url, timeout.reason)
      throw new TokenPoolError({ code: 'unexpected_response', status: res.status, message: `answer is not JSON: ${(err as Error).message}`, requestId: res.headers.get('x-request-id') ?? undefined })
    }
  }

  /** A streamed answer: the timeout covers its headers, not its body (stop it with options.signal). */
  async open (path: string, accept: string, options: CallOptions = {}): Promise<Response> {
    const headers = new AbortController()
    const timer = setTimeout(() => { headers.abort(new DOMException('no answer in time', 'TimeoutError')) }, this.timeoutMs)
    try {
      return await this.send('GET', path, undefined, options, headers.signal, accept)
    } finally {
      clearTimeout(timer)
    }
  }

  private async send (method: string, path: string, body: unknown, options: CallOptions, timeout: AbortSignal, accept: string): Promise<Response> {
    const headers: Record<string, string> = { accept }
    if (body !== undefined) headers['content-type'] = 'application/json'
    Object.assign(headers, this.auth())
    if (options.requestId !== undefined) headers['x-request-id'] = options.requestId
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal }
    let res: Response
    try {
      res = await this.fetch(this.url + path, init).catch(async (err: unknown) => {
        // Most often a kept-alive connection the server had closed meanwhile (this process
        // paused or busy past the server's keep-alive timeout): ask once more, on a new
        // connection. Every route is safe to repeat (allocate gives the same lease back, a
        // repeated release answers not_holder).
        if (!closedBeforeAnswer(err) || signal.aborted) throw err
        return await this.fetch(this.url + path, init)
      })
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason
      throw new TokenPoolUnreachableError(this.url, timeout.aborted ? timeout.reason : err)
    }
    if (!res.ok) throw await toError(res)
    return res
  }
}

/** `?a=1&b=2` of the defined values, or '' when there are none. */
export function query (params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v))
  return q.size === 0 ? '' : `?${q.toString()}`
}

/** The TokenPoolError of a streamed `error` event (`{"error": {code, message, details}}`), as the plain answer would have thrown it. */
function streamedError (data: unknown, requestId: string | undefined): TokenPoolError | undefined {
  const error = (data as { error?: { code?: unknown, message?: unknown, details?: unknown } } | null)?.error
  if (typeof error?.code !== 'string' || typeof error.message !== 'string') return undefined
  const code = error.code as ErrorCode
  const status: number = Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code] : 500
  // The stream has no Retry-After header; pool_exhausted carries it in details.
  const retryAfter = (error.details as { retry_after_seconds?: unknown } | null | undefined)?.retry_after_seconds
  const retryAfterSeconds = typeof retryAfter === 'number' && Number.isFinite(retryAfter) ? retryAfter : undefined
  return new TokenPoolError({ code, status, message: error.message, details: error.details, requestId, retryAfterSeconds })
}

/** What an answer that is not ok throws: the contract's error it carries, or unexpected_response. */
export async function toError (res: Response): Promise<TokenPoolError> {
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

/** Whether fetch failed because the connection closed before any answer came (undici's UND_ERR_SOCKET, a reset). */
function closedBeforeAnswer (err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET'
}
