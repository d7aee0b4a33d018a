import { TokenPoolError } from './errors.js'
import { watchEvents } from './events.js'
import type { CallOptions, ClientOptions, EventsOptions } from './options.js'
import { TokenPoolScope } from './scope.js'
import { query, Transport } from './transport.js'
import type { CreatePool, DeletedPool, Pool, PoolChanges, PoolEvent } from './types.js'

const DEFAULT_URL = 'http://127.0.0.1:4000'

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
  events (options: EventsOptions = {}): AsyncGenerator<PoolEvent, void, undefined> {
    return watchEvents(this.http, options)
  }
}

const poolPath = (name: string) => `/api/pools/${encodeURIComponent(name)}`
