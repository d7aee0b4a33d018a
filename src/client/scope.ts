import { exportChunks, exportCsv, exportRows } from './export.js'
import { keepLeaseAlive, type KeepAlive, type KeepAliveOptions } from './keep-alive.js'
import type { AllocateOptions, CallOptions, CooldownOptions, ExportQuery, ListPageOptions, StatsOptions, TokenPage } from './options.js'
import { query, type Transport } from './transport.js'
import type {
  ClearedJson, CooldownResult, DisableResult, EnableResult, EndedLease, ExportFormat, ExportRow, Lease, PoolMeta, Stats, TokenDetail,
  TokenStatus, TokenSummary, Usage,
} from './types.js'

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
    if (filter.format === 'csv') return exportCsv(this.exportText(filter, options))
    return exportRows(this.exportText({ ...filter, format: 'ndjson' }, options))
  }

  /** The export's body as it arrives, in chunks of text (to copy it somewhere without holding it). */
  exportText (filter: ExportQuery & { format?: ExportFormat } = {}, options?: CallOptions): AsyncGenerator<string, void, undefined> {
    return exportChunks(this.http, `${this.prefix}/export`, filter, options)
  }

  /**
   * Renews the lease every intervalMs (default a third of its TTL) until stop() is called, or
   * until it is lost: then onLost(err) is called once (not_holder, renewal_limit, …) and
   * renewals stop. Failures that may pass (unreachable, 429, 503) go to onError and the next
   * renewal tries again. The timer does not keep the process alive by itself.
   */
  keepAlive (lease: Lease, options: KeepAliveOptions = {}): KeepAlive {
    return keepLeaseAlive((tokenId, userId, call) => this.renew(tokenId, userId, call), lease, options)
  }

  /** The path of one token's routes in this scope. */
  protected token (tokenId: string): string {
    return `${this.prefix}/tokens/${encodeURIComponent(tokenId)}`
  }
}

/** How much longer than usual an answer may take when it may wait this many seconds (0 for a wait the service will refuse). */
const waitMs = (wait: unknown) => (typeof wait === 'number' && Number.isFinite(wait) && wait > 0 ? wait * 1000 : 0)
