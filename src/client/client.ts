import { ERROR_CODES, type ErrorCode } from '../domain/errors.js'
import { TokenPoolError, TokenPoolUnreachableError } from './errors.js'
import { parseSse, type SseMessage } from './sse.js'
import type {
  ClearedJson, CooldownResult, CreatePool, DeletedPool, DisableResult, EnableResult, EndedLease, ExportFormat, ExportRow, Lease,
  Pool, PoolChanges, PoolEvent, PoolEventType, PoolMeta, Stats, TokenDetail, TokenStatus, TokenSummary, Usage,
} from './types.js'

export interface ClientOptions {
  /** the service's base URL; default http://127.0.0.1:4000 */
  url?: string
  /** sent as `Authorization: Bearer …` (needed by the admin calls when the service sets ADMIN_TOKEN) */
  adminToken?: string
  /** ms to wait for each answer (not for the event stream, nor for an export's body); default 10 000 */
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
  /** only this pool's events; default every pool's (a pool handle's events() are its pool's) */
  pool?: string
  /** start after this event (replayed from the service's kept window) */
  lastEventId?: string
  /** stops the stream; so does leaving the for-await loop */
  signal?: AbortSignal
  /** reconnect (with Last-Event-ID) when the stream drops; default true */
  reconnect?: boolean
}

export interface ListPageOptions {
  /** at most this many tokens (1–10,000); default 100 */
  limit?: number
  /** nextCursor of the previous page */
  cursor?: string
  status?: TokenStatus
}

export interface TokenPage {
  tokens: TokenSummary[]
  /** the whole pool's counts, whatever the filter */
  meta: PoolMeta
  /** pass as cursor for the next page; null on the last one */
  nextCursor: string | null
}

export interface StatsOptions extends CallOptions {
  /** list at most this many least-used tokens (1–10,000); the service's default is 100 */
  leastUsedLimit?: number
}

export interface CooldownOptions {
  /** the holder; leave out for an admin cooldown (any token, no lease needed) */
  userId?: string
  /** how long, more than 0 and at most the pool's cooldown_max_seconds; fractions allowed */
  seconds: number
  /** also give the holder a new lease on another token (needs userId) */
  reallocate?: boolean
  /**
   * With reallocate: seconds the new lease may wait in the pool's queue when no token is free
   * (0 to the pool's max_wait_seconds); the call answers when it is served or its time is up
   */
  wait?: number
}

/** A waiting allocation's place in the pool's queue (rule 12), as a `queued` event tells it. */
export interface QueueState {
  /** 1 is served next */
  position: number
  /** how many wait in the pool, this request included */
  waiting: number
  /**
   * the latest this request is served, barring renewals, longer cooldowns, disables or a
   * shrink; null when fewer tokens will free up than are needed to reach it
   */
  estimatedGrantAt: Date | null
}

export interface AllocateOptions extends CallOptions {
  /**
   * Seconds to wait in the pool's queue (first come, first served) when no token is free:
   * 0 (the default) refuses at once; at most the pool's max_wait_seconds (else
   * TokenPoolError validation_failed). A wait that runs out throws pool_exhausted. The
   * request's timeout is this plus the client's timeoutMs. Abort options.signal to leave the queue.
   */
  wait?: number
  /** while waiting: on entering the queue, and whenever the position, the count or the estimate changes */
  onQueued?: (state: QueueState) => void
}

export interface ExportQuery {
  /** usages started at or after this (ISO 8601, or a Date) */
  since?: string | Date
  /** usages started before this (ISO 8601, or a Date) */
  until?: string | Date
}

export interface KeepAliveOptions {
  /** the holder; default the lease's user_id */
  userId?: string
  /** ms between renewals; default a third of the TTL */
  intervalMs?: number
  /** the pool's lease_ttl_seconds; default expires_at − now of the lease given */
  ttlSeconds?: number
  /**
   * The lease can't be kept any more (not_holder: it ended; renewal_limit: it reached
   * renewable_until; or another refusal that trying again won't change). Renewals stop.
   */
  onLost?: (err: TokenPoolError) => void
  /** after each renewal, with the renewed lease */
  onRenew?: (lease: Lease) => void
  /** a renewal that failed for a passing reason (unreachable, 429, 503): the next one tries again */
  onError?: (err: Error) => void
}

export interface KeepAlive {
  /** stops renewing (the lease is not released: release it, or let it expire) */
  stop: () => void
  /** the lease as the last renewal answered it */
  readonly lease: Lease
  /** true once stopped, by stop() or because the lease was lost */
  readonly stopped: boolean
}

const DEFAULT_URL = 'http://127.0.0.1:4000'
// The fastest keepAlive renews: a TTL of a fraction of a second must not turn into a busy loop.
const MIN_KEEPALIVE_MS = 50

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

/**
 * The calls on leases and tokens, within one scope: a pool (TokenPoolClient.pool(name)), or,
 * for the client itself, the default pool's v0.1 routes and token routes that find a token
 * in whichever pool holds it.
 */
export abstract class TokenPoolScope {
  /** the pool these calls are confined to; undefined for the client itself */
  abstract readonly poolName: string | undefined
  protected abstract readonly http: Transport
  /** `/api` (the default pool's routes; tokens of any pool) or `/api/pools/<name>` */
  protected abstract readonly prefix: string

  /** the service's base URL */
  get url (): string { return this.http.url }

  /**
   * Leases the least-used free token, or returns the lease the user already holds in this pool (unchanged).
   * With options.wait, a request that finds no token free waits in the pool's queue up to that
   * many seconds (options.onQueued hears its place); TokenPoolError pool_exhausted when the time is up.
   */
  async allocate (userId: string, options: AllocateOptions = {}): Promise<Lease> {
    const { wait, onQueued, ...call } = options
    const path = `${this.prefix}/tokens/allocate`
    if (wait === undefined) return (await this.http.call<{ data: Lease }>('POST', path, { user_id: userId }, call)).data
    // A wait that isn't a number goes to the service as it is: its 422 names the field.
    return (await this.http.waitFor<{ data: Lease }>(path, { user_id: userId, wait_seconds: wait }, waitMs(wait) / 1000, onQueued, call)).data
  }

  /** Gives a token back before its lease ends; TokenPoolError not_holder when the user does not hold it now. */
  async release (tokenId: string, userId: string, options?: CallOptions): Promise<EndedLease> {
    return (await this.http.call<{ data: EndedLease }>('POST', `${this.token(tokenId)}/release`, { user_id: userId }, options)).data
  }

  /**
   * Extends the holder's lease to now + lease_ttl_seconds, never past renewable_until; same
   * token, lease_id and started_at. TokenPoolError not_holder, or renewal_limit (details.renewable_until)
   * when it can't be extended any further.
   */
  async renew (tokenId: string, userId: string, options?: CallOptions): Promise<Lease> {
    return (await this.http.call<{ data: Lease }>('POST', `${this.token(tokenId)}/renew`, { user_id: userId }, options)).data
  }

  /**
   * Takes a token out of use for `seconds`: by its holder (userId; the lease ends, and with
   * reallocate the holder gets a new lease on another token, or lease_error says why not), or
   * by an admin (no userId). With reallocate and wait, the new lease may wait in the pool's
   * queue up to wait seconds (the answer is still one JSON answer, when served or timed out).
   */
  async cooldown (tokenId: string, cooldown: CooldownOptions, options?: CallOptions): Promise<CooldownResult> {
    const body = {
      ...(cooldown.userId === undefined ? {} : { user_id: cooldown.userId }),
      seconds: cooldown.seconds,
      ...(cooldown.reallocate === undefined ? {} : { reallocate: cooldown.reallocate }),
      ...(cooldown.wait === undefined ? {} : { wait_seconds: cooldown.wait }),
    }
    const extraMs = cooldown.wait === undefined ? 0 : waitMs(cooldown.wait)
    return (await this.http.call<{ data: CooldownResult }>('POST', `${this.token(tokenId)}/cooldown`, body, options, extraMs)).data
  }

  /** Takes a token out of use until enabled, ending its lease if any (admin). */
  async disable (tokenId: string, reason?: string | null, options?: CallOptions): Promise<DisableResult> {
    const body = reason === undefined ? {} : { reason }
    return (await this.http.call<{ data: DisableResult }>('POST', `${this.token(tokenId)}/disable`, body, options)).data
  }

  /** Ends a token's disabled state and its cooldown now (admin). */
  async enable (tokenId: string, options?: CallOptions): Promise<EnableResult> {
    return (await this.http.call<{ data: EnableResult }>('POST', `${this.token(tokenId)}/enable`, undefined, options)).data
  }

  /** Sets a token's label (up to 100 characters), or removes it with null (admin). */
  async label (tokenId: string, label: string | null, options?: CallOptions): Promise<TokenDetail> {
    return (await this.http.call<{ data: TokenDetail }>('PATCH', this.token(tokenId), { label }, options)).data
  }

  /** Every token in creation order (or only those of one status), with the whole pool's counts: one answer, streamed by the service. */
  async list (filter: { status?: TokenStatus } = {}, options?: CallOptions): Promise<{ tokens: TokenSummary[], meta: PoolMeta }> {
    const body = await this.http.call<{ data: TokenSummary[], meta: PoolMeta }>('GET', `${this.prefix}/tokens${query({ status: filter.status })}`, undefined, options)
    return { tokens: body.data, meta: body.meta }
  }

  /** One page of tokens in creation order; pass nextCursor back as cursor for the next. */
  async listPage (page: ListPageOptions = {}, options?: CallOptions): Promise<TokenPage> {
    const q = query({ status: page.status, limit: page.limit ?? 100, cursor: page.cursor })
    const body = await this.http.call<{ data: TokenSummary[], meta: PoolMeta }>('GET', `${this.prefix}/tokens${q}`, undefined, options)
    return { tokens: body.data, meta: body.meta, nextCursor: body.meta.next_cursor }
  }

  /** One token and its active lease. */
  async get (tokenId: string, options?: CallOptions): Promise<TokenDetail> {
    return (await this.http.call<{ data: TokenDetail }>('GET', this.token(tokenId), undefined, options)).data
  }

  /** One page of a token's usages, newest first. */
  async historyPage (tokenId: string, page: { limit?: number, cursor?: string } = {}, options?: CallOptions): Promise<{ usages: Usage[], nextCursor: string | null }> {
    const body = await this.http.call<{ data: { usages: Usage[] }, meta: { next_cursor: string | null } }>(
      'GET', `${this.token(tokenId)}/history${query(page)}`, undefined, options)
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

  /** Ends every active lease of the pool now (admin). */
  async clear (options?: CallOptions): Promise<ClearedJson> {
    return (await this.http.call<{ data: ClearedJson }>('POST', `${this.prefix}/tokens/clear`, undefined, options)).data
  }

  /** Usage statistics of the pool's current window. */
  async stats (options: StatsOptions = {}): Promise<Stats> {
    const { leastUsedLimit, ...call } = options
    return (await this.http.call<{ data: Stats }>('GET', `${this.prefix}/stats${query({ least_used_limit: leastUsedLimit })}`, undefined, call)).data
  }

  /**
   * Every usage of the pool started in [since, until), oldest first, as the service streams
   * them (admin): NDJSON rows one at a time, or with format 'csv' the whole text.
   */
  export (filter?: ExportQuery & { format?: 'ndjson' }, options?: CallOptions): AsyncGenerator<ExportRow, void, undefined>
  export (filter: ExportQuery & { format: 'csv' }, options?: CallOptions): Promise<string>
  export (filter: ExportQuery & { format?: ExportFormat } = {}, options?: CallOptions): AsyncGenerator<ExportRow, void, undefined> | Promise<string> {
    if (filter.format === 'csv') return this.exportCsv(filter, options)
    return this.exportRows(filter, options)
  }

  /** The export's body as it arrives, in chunks of text (to copy it somewhere without holding it). */
  async * exportText (filter: ExportQuery & { format?: ExportFormat } = {}, options?: CallOptions): AsyncGenerator<string, void, undefined> {
    const q = query({ since: iso(filter.since), until: iso(filter.until), format: filter.format })
    const format = filter.format ?? 'ndjson'
    const res = await this.http.open(`${this.prefix}/export${q}`, format === 'csv' ? 'text/csv' : 'application/x-ndjson', options)
    if (res.body === null) return
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>
        try {
          chunk = await reader.read()
        } catch (err) {
          if (options?.signal?.aborted === true) throw options.signal.reason
          // The service answered: the body broke off, which is a cut export, not an unreachable service.
          throw new TokenPoolError({ code: 'unexpected_response', status: res.status, message: `the export was cut short (${(err as Error).message}); try again` })
        }
        if (chunk.done) return
        yield chunk.value
      }
    } finally {
      await reader.cancel().catch(() => {})
    }
  }

  private async * exportRows (filter: ExportQuery, options?: CallOptions): AsyncGenerator<ExportRow, void, undefined> {
    let buffer = ''
    for await (const chunk of this.exportText({ ...filter, format: 'ndjson' }, options)) {
      buffer += chunk
      let end: number
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end)
        buffer = buffer.slice(end + 1)
        if (line !== '') yield parseRow(line)
      }
    }
    // Each row ends with a newline: anything left is a row the stream cut short.
    if (buffer.trim() !== '') throw new TokenPoolError({ code: 'unexpected_response', status: 200, message: 'the export was cut short; try again' })
  }

  private async exportCsv (filter: ExportQuery, options?: CallOptions): Promise<string> {
    let text = ''
    for await (const chunk of this.exportText({ ...filter, format: 'csv' }, options)) text += chunk
    return text
  }

  /**
   * Renews the lease every intervalMs (default a third of its TTL) until stop() is called, or
   * until it is lost: then onLost(err) is called once (not_holder, renewal_limit, …) and
   * renewals stop. Failures that may pass (unreachable, 429, 503) go to onError and the next
   * renewal tries again. The timer does not keep the process alive by itself.
   */
  keepAlive (lease: Lease, options: KeepAliveOptions = {}): KeepAlive {
    const userId = options.userId ?? lease.user_id
    // The service hides other users' ids; a lease of one's own always shows it.
    if (userId === null) throw new TypeError('keepAlive needs the holder\'s id: pass options.userId')
    const measured = Date.parse(lease.expires_at) - Date.now()
    // expires_at − now, unless this machine's clock and the service's disagree by more than
    // the rounding of expires_in_seconds: then the service's own count.
    const reported = lease.expires_in_seconds * 1000
    const ttlMs = options.ttlSeconds !== undefined
      ? options.ttlSeconds * 1000
      : (Number.isFinite(measured) && Math.abs(measured - reported) <= 1000 ? measured : reported)
    const intervalMs = Math.max(MIN_KEEPALIVE_MS, options.intervalMs ?? ttlMs / 3)
    const abort = new AbortController()
    let current = lease
    let stopped = false
    let timer: NodeJS.Timeout | undefined

    const stop = () => {
      if (stopped) return
      stopped = true
      clearTimeout(timer)
      abort.abort()
    }
    const schedule = () => {
      if (stopped) return
      // A callback that throws must not stop the renewals, nor vanish: it is reported as uncaught.
      timer = setTimeout(() => { tick().catch((err: unknown) => { queueMicrotask(() => { throw err }) }) }, intervalMs)
      timer.unref?.()
    }
    const tick = async () => {
      let renewed: Lease
      try {
        renewed = await this.renew(current.token_id, userId, { signal: abort.signal })
      } catch (err) {
        if (stopped) return
        if (err instanceof TokenPoolError && isFinal(err)) {
          stop()
          options.onLost?.(err)
        } else {
          schedule()
          options.onError?.(err as Error)
        }
        return
      }
      if (stopped) return
      current = renewed
      schedule()
      // The caller's callback failing is the caller's error, not an uncaught one that ends the process.
      try {
        options.onRenew?.(renewed)
      } catch (err) {
        options.onError?.(err as Error)
      }
    }

    schedule()
    return {
      stop,
      get lease () { return current },
      get stopped () { return stopped },
    }
  }

  /** The path of one token's routes in this scope. */
  protected token (tokenId: string): string {
    return `${this.prefix}/tokens/${encodeURIComponent(tokenId)}`
  }
}

/** One pool's calls: every lease and token route confined to that pool (a token of another pool is not_found). */
export class PoolHandle extends TokenPoolScope {
  protected readonly prefix: string

  constructor (protected readonly http: Transport, private readonly client: TokenPoolClient, readonly poolName: string) {
    super()
    this.prefix = `/api/pools/${encodeURIComponent(poolName)}`
  }

  /** the pool's name */
  get name (): string { return this.poolName }

  /** The pool's settings and counts. */
  async info (options?: CallOptions): Promise<Pool> {
    return await this.client.getPool(this.poolName, options)
  }

  /** This pool's events (see TokenPoolClient.events). */
  events (options: Omit<EventsOptions, 'pool'> = {}): AsyncGenerator<PoolEvent, void, undefined> {
    return this.client.events({ ...options, pool: this.poolName })
  }
}

/**
 * A typed client for Token Pool's HTTP API. Methods return the answer's `data`; failures
 * throw TokenPoolError (the contract's code, status, details, Retry-After) or
 * TokenPoolUnreachableError.
 *
 * The lease calls on the client itself act on the `default` pool (the v0.1 routes); the
 * token calls (get, release, renew, cooldown, …) find the token in whichever pool holds it.
 * `client.pool(name)` gives the same calls confined to one pool.
 */
export class TokenPoolClient extends TokenPoolScope {
  readonly poolName = undefined
  protected readonly http: Transport
  protected readonly prefix = '/api'

  constructor (options: ClientOptions = {}) {
    super()
    this.http = new Transport((options.url ?? DEFAULT_URL).replace(/\/+$/, ''), options.adminToken, options.timeoutMs ?? 10_000, options.fetch ?? globalThis.fetch)
  }

  /** The calls of one pool. */
  pool (name: string): PoolHandle {
    return new PoolHandle(this.http, this, name)
  }

  /** Every pool, with its settings and counts. */
  async pools (options?: CallOptions): Promise<Pool[]> {
    return (await this.http.call<{ data: Pool[] }>('GET', '/api/pools', undefined, options)).data
  }

  /** One pool; TokenPoolError not_found when there is none of that name. */
  async getPool (name: string, options?: CallOptions): Promise<Pool> {
    return (await this.http.call<{ data: Pool }>('GET', poolPath(name), undefined, options)).data
  }

  /** Creates a pool (admin); settings left out take their defaults. TokenPoolError pool_exists when the name is in use. */
  async createPool (pool: CreatePool, options?: CallOptions): Promise<Pool> {
    return (await this.http.call<{ data: Pool }>('POST', '/api/pools', pool, options)).data
  }

  /** Changes some of a pool's settings (admin); `user_quota: null` removes a quota. */
  async updatePool (name: string, changes: PoolChanges, options?: CallOptions): Promise<Pool> {
    return (await this.http.call<{ data: Pool }>('PATCH', poolPath(name), changes, options)).data
  }

  /** Deletes a pool (admin); pool_busy while a lease is active, unless force (those leases end, reason cleared). */
  async deletePool (name: string, opts: { force?: boolean } = {}, options?: CallOptions): Promise<DeletedPool> {
    return (await this.http.call<{ data: DeletedPool }>('DELETE', poolPath(name) + query({ force: opts.force === true ? 'true' : undefined }), undefined, options)).data
  }

  /** Whether the service can reach its database (GET /readyz). */
  async ready (options?: CallOptions): Promise<boolean> {
    try {
      await this.http.call('GET', '/readyz', undefined, options)
      return true
    } catch (err) {
      if (err instanceof TokenPoolError && err.status === 503) return false
      throw err
    }
  }

  /**
   * Every change to every pool (or options.pool's), from every node, as it happens (GET
   * /api/events). Reconnects with Last-Event-ID when the stream drops, so no event is missed
   * within the service's kept window; beyond it, a `reset` event says to re-read the state.
   * Leave the loop (or abort the signal) to stop.
   */
  async * events (options: EventsOptions = {}): AsyncGenerator<PoolEvent, void, undefined> {
    const stop = new AbortController()
    const signal = options.signal === undefined ? stop.signal : AbortSignal.any([stop.signal, options.signal])
    const path = '/api/events' + query({ pool: options.pool })
    let lastEventId = options.lastEventId
    let retryMs = 1000
    try {
      while (!signal.aborted) {
        // One controller per connection: leaving it (the loop ended, or the stream dropped) aborts it.
        const connection = new AbortController()
        let res: Response
        try {
          res = await this.http.fetch(this.url + path, {
            // With the admin token, other users' ids are shown, not hidden.
            headers: { accept: 'text/event-stream', ...this.http.auth(), ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) },
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
}

const EVENT_TYPES = new Set<string>(['allocated', 'renewed', 'released', 'cleared', 'cooling', 'disabled', 'enabled', 'pool_changed', 'reset'] satisfies PoolEventType[])
const isEventType = (s: string): s is PoolEventType => EVENT_TYPES.has(s)

// Refusals that trying again won't change: the lease is gone (or can't be extended).
const isFinal = (err: TokenPoolError) => err.status >= 400 && err.status < 500 && err.status !== 429 && err.status !== 408

const poolPath = (name: string) => `/api/pools/${encodeURIComponent(name)}`

/** `?a=1&b=2` of the defined values, or '' when there are none. */
function query (params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v))
  return q.size === 0 ? '' : `?${q.toString()}`
}

const iso = (d: string | Date | undefined) => (d instanceof Date ? d.toISOString() : d)

function parseRow (line: string): ExportRow {
  try {
    return JSON.parse(line) as ExportRow
  } catch (err) {
    throw new TokenPoolError({ code: 'unexpected_response', status: 200, message: `an export row is not JSON: ${(err as Error).message}` })
  }
}

/** How much longer than usual an answer may take when it may wait this many seconds (0 for a wait the service will refuse). */
const waitMs = (wait: unknown) => (typeof wait === 'number' && Number.isFinite(wait) && wait > 0 ? wait * 1000 : 0)

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

/** Whether fetch failed because the connection closed before any answer came (undici's UND_ERR_SOCKET, a reset). */
function closedBeforeAnswer (err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET'
}
