// What the calls take, and the two shapes the client builds itself rather than passing an answer through (TokenPage, QueueState).
import type { PoolMeta, TokenStatus, TokenSummary } from './types.js'

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
