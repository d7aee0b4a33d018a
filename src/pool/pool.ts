import { EventEmitter } from 'node:events'
import { decodeCursor, encodeCursor } from '../domain/cursor.js'
import { PoolError } from '../domain/errors.js'
import {
  DEFAULT_POOL, withDefaults,
  type EndedLease, type Lease, type PoolSettings, type PoolStats, type PoolView, type ReleaseReason,
  type TokenStatus, type TokenView, type Usage, type WindowInfo,
} from '../domain/types.js'
import type { Id } from '../domain/ids.js'
import type { Db } from '../store/db.js'
import { notifyReaders, prune } from '../store/events.js'
import * as health from '../store/health.js'
import * as leases from '../store/leases.js'
import { migrate } from '../store/migrate.js'
import * as pools from '../store/pools.js'
import { translateDbError, withRetry } from '../store/sqlstate.js'
import * as usages from '../store/usages.js'
import * as waiters from '../store/waiters.js'
import { Batcher } from './batcher.js'
import { CommitHint } from './commit-hint.js'
import type { PoolState } from './model/pool-state.js'
import { ReadModel } from './model/read-model.js'
import { ALIVE_MS, WaitingRoom, type WaitOptions } from './waiting.js'

export interface PoolOptions {
  /** the `default` pool's settings, from the environment at every start */
  defaultPool: Partial<PoolSettings>
  /** ms between expiry sweeps; 0 turns the sweep off (tests drive it) */
  sweepIntervalMs?: number
}

/** A change this process committed, for its logs and metrics (the event stream reads the table). */
export type PoolEvent =
  | { type: 'allocated' | 'renewed', lease: Lease }
  | { type: 'released' | 'cleared', lease: EndedLease }
  | { type: 'cooling' | 'disabled' | 'enabled', token: TokenView }
  | { type: 'pool_changed', pool: PoolView | { name: string, deleted: true } }

/** A request that queued has its answer (rule 12), for the wait-time metric. */
export interface WaitEnded {
  pool: string
  seconds: number
  outcome: 'allocated' | 'timed_out' | 'gone' | 'failed'
}

export interface TokenPage {
  tokens: TokenView[]
  nextCursor: string | null
}

// Allocations queued in memory per pool before new ones are refused with 503: a slow
// database must not pile requests up without bound.
const MAX_QUEUED = 10_000
// Tokens read per statement when a whole pool is streamed or exported.
const STREAM_PAGE = 5_000
// Counts of an older window forgotten per statement by the sweep; each statement holds the
// pool's allocations while it runs (migration 0027), so it is kept short.
const FORGET_STEP = 500
// Events kept for clients that reconnect: at least this many, and at least the last hour.
const KEEP_EVENTS = 100_000

/** What each use case means, as transactions over the store. Emits a PoolEvent after each commit. */
export class TokenPool extends EventEmitter<{ change: [PoolEvent], waited: [WaitEnded] }> {
  /** per pool: batches that take the pool's turn shared (nobody waits) and exclusive (waiters) */
  private readonly batchers = new Map<string, { shared: Batcher<leases.DbGrant, Ask, Id>, exclusive: Batcher<leases.DbGrant, Ask, Id> }>()
  private readonly hint: CommitHint
  private readonly waiting: WaitingRoom
  /** group commit for releases and renewals, as for allocations: one transaction per batch, one event per change */
  private readonly releases: Batcher<leases.DbRelease, TokenUser>
  private readonly renewals: Batcher<leases.DbRenewal, TokenUser>
  /** group commit for cooldowns, disables and enables; every request its own key */
  private readonly healthChanges: Batcher<health.DbHealthChange, health.HealthChange>
  private healthRequests = 0
  private sweepTimer: NodeJS.Timeout | undefined
  /** this node's copy of the pools, which every read is served from */
  private readonly model: ReadModel
  private statsMemo = { generation: -1, answers: new Map<string, PoolStats>() }
  readonly defaultSettings: PoolSettings

  constructor (readonly db: Db, readonly options: PoolOptions) {
    super()
    this.defaultSettings = withDefaults(options.defaultPool)
    this.model = new ReadModel(db)
    this.hint = new CommitHint(async () => { await notifyReaders(db) })
    this.waiting = new WaitingRoom({
      db,
      retry: async (pool, users, fresh) => {
        const b = this.batcher(pool).exclusive
        await Promise.all(users.map(async (u) => await b.submit(u, { queue: true, fresh }).catch((err: unknown) => { this.waiting.failed(pool, [u], err) })))
      },
      giveBack: async (pool, lease) => { await this.release(lease.tokenId, lease.userId, pool) },
      timedOut: exhausted,
      poke: () => { this.hint.poke() },
    })
    const inFlight = db.kind === 'pglite' ? 1 : 4
    this.releases = new Batcher(async (asks) => {
      const rows = await withRetry(async () => await leases.releaseMany(db, distinctPairs(asks)))
      const released = rows.filter((r) => r.outcome === 'released')
      if (released.length > 0) this.hint.poke()
      for (const r of released) this.emit('change', { type: 'released', lease: releasedLease(r) })
      return new Map(rows.map((r) => [`${r.token_id} ${r.user_id}`, r]))
    }, 256, inFlight, MAX_QUEUED)
    this.renewals = new Batcher(async (asks) => {
      const rows = await withRetry(async () => await leases.renewMany(db, distinctPairs(asks)))
      const renewed = rows.filter((r) => r.outcome === 'renewed')
      if (renewed.length > 0) this.hint.poke()
      for (const r of renewed) this.emit('change', { type: 'renewed', lease: renewedLease(r) })
      return new Map(rows.map((r) => [`${r.token_id} ${r.user_id}`, r]))
    }, 256, inFlight, MAX_QUEUED)
    this.healthChanges = new Batcher(async (asks) => {
      const rows = await withRetry(async () => await health.changeMany(db, asks.map((a) => a.item)))
      return new Map(asks.map((a, i) => [a.key, rows[i]!]))
    }, 256, inFlight, MAX_QUEUED)
    // A change made here may free a token for a waiter here.
    this.on('change', (e) => { this.waiting.wake(poolOfEvent(e)) })
  }

  /** Applies the schema and sets the default pool from the configuration; then keeps bookkeeping going. */
  async start (): Promise<void> {
    await migrate(this.db)
    await withRetry(async () => {
      await pools.update(this.db, DEFAULT_POOL, this.defaultSettings, false)
      await pools.provision(this.db, DEFAULT_POOL, this.defaultSettings.size)
    })
    await read(async () => { await this.model.start() })
    const every = this.options.sweepIntervalMs ?? 1000
    if (every > 0) {
      this.sweepTimer = setInterval(() => { this.sweep().catch(() => {}) }, every)
      this.sweepTimer.unref()
    }
  }

  /** Stops bookkeeping and answers every waiter on this node (503) before the process goes. */
  async stop (): Promise<void> {
    clearInterval(this.sweepTimer)
    this.model.stop()
    await this.waiting.close()
  }

  // ── pools ──────────────────────────────────────────────────────────────────

  /** Every pool, in name order, with its settings and counts (from the read model). */
  async listPools (): Promise<PoolView[]> {
    await this.caughtUp()
    return this.model.allPools().map((state) => this.viewOf(state)).sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  async getPool (name: string): Promise<PoolView> {
    return this.viewOf(await this.poolState(name))
  }

  private viewOf (state: PoolState): PoolView {
    const { name, window_started_at: _, ...settings } = state.settings
    const { windowStartedAt: _s, windowResetsAt: _r, ...counts } = this.headOf(state)
    return { name, ...settings, ...counts }
  }

  async createPool (name: string, given: Partial<PoolSettings>): Promise<PoolView> {
    const s = withDefaults(given)
    checkSettings(s)
    const outcome = await withRetry(async () => await pools.create(this.db, name, s))
    if (outcome === 'exists') throw new PoolError('pool_exists', `A pool named ${name} exists already.`)
    await withRetry(async () => { await pools.provision(this.db, name, s.size) })
    return await this.poolChanged(name)
  }

  async updatePool (name: string, changes: Partial<PoolSettings>): Promise<PoolView> {
    if (name === DEFAULT_POOL) throw managedByConfig()
    const current = await read(async () => await pools.settings(this.db, name))
    if (current === undefined) throw poolNotFound(name)
    // A cap equal to the TTL (the default: no renewal past the first lease) follows a new TTL,
    // unless the change sets the cap itself.
    if (changes.lease_ttl_seconds !== undefined && changes.lease_max_seconds === undefined && current.lease_max_seconds === current.lease_ttl_seconds) {
      changes = { ...changes, lease_max_seconds: changes.lease_ttl_seconds }
    }
    const next = { ...current, ...changes }
    checkSettings(next)
    const outcome = await withRetry(async () => await pools.update(this.db, name, changes, true))
    if (outcome === 'not_found') throw poolNotFound(name)
    await withRetry(async () => { await pools.provision(this.db, name, next.size) })
    return await this.poolChanged(name)
  }

  async deletePool (name: string, force: boolean): Promise<void> {
    if (name === DEFAULT_POOL) throw managedByConfig()
    const outcome = await withRetry(async () => await pools.remove(this.db, name, force))
    if (outcome === 'not_found') throw poolNotFound(name)
    if (outcome === 'busy') {
      throw new PoolError('pool_busy', `Pool ${name} has active leases; delete with ?force=true to end them.`)
    }
    this.batchers.delete(name)
    this.hint.poke()
    await withRetry(async () => { await pools.retireAll(this.db, name) })
    this.emit('change', { type: 'pool_changed', pool: { name, deleted: true } })
  }

  private async poolChanged (name: string): Promise<PoolView> {
    this.hint.poke()
    const view = await this.getPool(name)
    this.emit('change', { type: 'pool_changed', pool: view })
    return view
  }

  // ── leases ─────────────────────────────────────────────────────────────────

  /**
   * A lease in `pool` for the user (rules 2-7, 14); with waitSeconds, waits in the pool's
   * queue while no token is free (rule 12).
   */
  async allocate (userId: Id, pool: string = DEFAULT_POOL, opts: WaitOptions = {}): Promise<Lease> {
    const waitSeconds = opts.waitSeconds ?? 0
    let row: leases.DbGrant
    if (waitSeconds > 0) {
      await this.checkWait(pool, waitSeconds)
      row = await this.allocateWaiting(userId, pool, waitSeconds, opts)
    } else {
      row = await this.batcher(pool).shared.submit(userId, { queue: false, fresh: true })
      // Someone joined the queue while this batch took its turn: take it again, in turn.
      if (row.outcome === 'requeue') row = await this.batcher(pool).exclusive.submit(userId, { queue: false, fresh: true })
    }
    if (row.outcome === 'no_pool') {
      this.batchers.delete(pool)
      throw poolNotFound(pool)
    }
    if (row.outcome === 'quota') {
      const retryAfterSeconds = Math.max(1, Math.ceil((row.retry_after_ms ?? 1000) / 1000))
      throw new PoolError('quota_exceeded', `This user has taken its quota of new leases in pool ${pool} for this window.`, {
        retryAfterSeconds, details: { pool, retry_after_seconds: retryAfterSeconds },
      })
    }
    // 'queued' here: the same user's waiting request shared the batch; this one does not wait.
    if (row.outcome !== 'new' && row.outcome !== 'granted' && row.outcome !== 'existing') throw exhausted(pool, row.retry_after_ms)
    return {
      pool,
      tokenId: row.token_id!,
      userId,
      leaseId: row.lease_id!,
      startedAt: row.started_at!,
      expiresAt: row.expires_at!,
      renewableUntil: row.renewable_until!,
      expiresInSeconds: secondsLeft(row.expires_at!, row.outcome === 'existing' ? row.now : row.started_at!),
      evictedUserId: row.evicted_user_id,
      isNew: row.outcome !== 'existing',
    }
  }

  /** Rule 12: wait_seconds is at most the pool's max_wait_seconds, never silently capped. */
  async checkWait (pool: string, waitSeconds: number): Promise<void> {
    const s = await read(async () => await pools.settings(this.db, pool))
    if (s === undefined) throw poolNotFound(pool)
    if (waitSeconds > s.max_wait_seconds) {
      const message = `must be at most the pool's max_wait_seconds (${s.max_wait_seconds})`
      throw new PoolError('validation_failed', `wait_seconds ${message}`, {
        details: { field: 'wait_seconds', location: 'body', issues: [{ field: 'wait_seconds', message }] },
      })
    }
  }

  private async allocateWaiting (userId: Id, pool: string, waitSeconds: number, opts: WaitOptions): Promise<leases.DbGrant> {
    let queuedAt: number | undefined
    const onQueued = opts.onQueued
    const answer = this.waiting.enter(pool, userId, waitSeconds, {
      ...opts,
      onQueued: (state) => {
        queuedAt ??= performance.now()
        onQueued?.(state)
      },
    })
    this.batcher(pool).shared.submit(userId, { queue: true, fresh: true }).catch((err: unknown) => { this.waiting.failed(pool, [userId], err) })
    const waited = (outcome: WaitEnded['outcome']) => {
      if (queuedAt !== undefined) this.emit('waited', { pool, seconds: (performance.now() - queuedAt) / 1000, outcome })
    }
    try {
      const row = await answer
      waited('allocated')
      return row
    } catch (err) {
      waited(opts.signal?.aborted === true ? 'gone' : err instanceof PoolError && err.code === 'pool_exhausted' ? 'timed_out' : 'failed')
      throw err
    }
  }

  /** Two group-committing queues per pool: each batch is one tp_allocate call, in one pool. */
  private batcher (pool: string): { shared: Batcher<leases.DbGrant, Ask, Id>, exclusive: Batcher<leases.DbGrant, Ask, Id> } {
    let b = this.batchers.get(pool)
    if (b === undefined) {
      // PGlite has one connection; PostgreSQL gets a few batches in flight to overlap round
      // trips. Exclusive batches take turns in the database anyway.
      const inFlight = this.db.kind === 'pglite' ? 1 : 4
      b = {
        shared: new Batcher(async (asks) => await this.allocateBatch(pool, asks, false), 256, inFlight, MAX_QUEUED),
        exclusive: new Batcher(async (asks) => await this.allocateBatch(pool, asks, true), 256, 1, MAX_QUEUED),
      }
      this.batchers.set(pool, b)
    }
    return b
  }

  private async allocateBatch (pool: string, all: Array<{ key: Id, item: Ask }>, exclusive: boolean): Promise<Map<Id, leases.DbGrant>> {
    // A waiter that left (or was served) since it was submitted is not asked for: it would
    // join again. Its submitter hears 'gone'.
    const asks = all.filter((a) => !a.item.queue || this.waiting.has(pool, a.key))
    const skipped = new Map(all.filter((a) => !asks.includes(a)).map((a) => [a.key, gone(a.key)]))
    if (asks.length === 0) return skipped
    const users = [...new Set(asks.map((a) => a.key))]
    const freshSet = new Set(asks.filter((a) => a.item.fresh).map((a) => a.key))
    const fresh = [...freshSet]
    const queue = [...new Set(asks.filter((a) => a.item.queue).map((a) => a.key))]
    const plain = new Set(asks.filter((a) => !a.item.queue).map((a) => a.key))
    const sentAfter = this.waiting.sentAfter()
    const { grants: rows, expired } = await this.waiting.asking(pool, queue, async () =>
      await withRetry(async () => await leases.allocateMany(this.db, pool, { users, fresh, queue, node: this.waiting.node, exclusive, aliveMs: ALIVE_MS })))
    // Leases this batch found run out and wrote as such, before the grants that followed them.
    for (const r of expired) this.emit('change', { type: 'released', lease: ended(r, 'expired') })
    // One event per lease granted, however many requests asked for it (a waiter of another
    // node granted in this turn included: its node only hands the lease over).
    for (const r of rows) {
      if (r.outcome === 'new' || r.outcome === 'granted') {
        this.emit('change', {
          type: 'allocated',
          lease: {
            pool,
            tokenId: r.token_id!,
            userId: r.user_id,
            leaseId: r.lease_id!,
            startedAt: r.started_at!,
            expiresAt: r.expires_at!,
            renewableUntil: r.renewable_until!,
            expiresInSeconds: secondsLeft(r.expires_at!, r.started_at!),
            evictedUserId: r.evicted_user_id,
            isNew: true,
          },
        })
      }
    }
    const joined = rows.length > 0 &&
      this.waiting.apply(pool, rows, {
        waiters: new Set(queue),
        waiterOnly: new Set(queue.filter((u) => !plain.has(u))),
        retried: new Set(queue.filter((u) => !freshSet.has(u))),
        sentAfter,
      }, rows[0]!.now)
    // New leases, ends of ones that ran out and new waiters are news for the other nodes.
    if (joined || expired.length > 0 || rows.some((r) => r.outcome === 'new' || r.outcome === 'granted')) this.hint.poke()
    return new Map([...skipped, ...rows.map((r) => [r.user_id, r] as const)])
  }

  async release (tokenId: Id, userId: Id, pool?: string): Promise<EndedLease> {
    await this.checkPoolOf(tokenId, pool)
    const row = await this.releases.submit(`${tokenId} ${userId}`, { tokenId, userId })
    if (row.outcome === 'not_found') throw tokenNotFound(tokenId)
    if (row.outcome === 'not_holder') throw notHolder()
    return releasedLease(row)
  }

  async renew (tokenId: Id, userId: Id, pool?: string): Promise<Lease> {
    await this.checkPoolOf(tokenId, pool)
    const row = await this.renewals.submit(`${tokenId} ${userId}`, { tokenId, userId })
    if (row.outcome === 'not_found') throw tokenNotFound(tokenId)
    if (row.outcome === 'not_holder') throw notHolder()
    if (row.outcome === 'limit') {
      // tp_renew read the cap from the lease it refused to extend.
      throw new PoolError('renewal_limit', 'The lease already ends at its renewal cap (renewable_until).', {
        details: { renewable_until: row.renewable_until?.toISOString() ?? null },
      })
    }
    return renewedLease(row)
  }

  async clear (pool: string = DEFAULT_POOL): Promise<number> {
    await this.getPool(pool)
    const rows = await withRetry(async () => await leases.clear(this.db, pool))
    if (rows.length > 0) this.hint.poke()
    for (const r of rows) this.emit('change', { type: 'cleared', lease: ended(r, 'cleared') })
    return rows.length
  }

  // ── token health ───────────────────────────────────────────────────────────

  /** By the holder (userId) or an admin (userId null): ends the lease, if any, and cools the token. */
  async cooldown (tokenId: Id, userId: Id | null, seconds: number, pool?: string): Promise<{ token: TokenView, endedLease: EndedLease | null }> {
    await this.checkPoolOf(tokenId, pool)
    const row = await this.healthChange({ kind: 'cooldown', tokenId, userId, seconds })
    if (row.outcome === 'not_found') throw tokenNotFound(tokenId)
    if (row.outcome === 'not_holder') throw notHolder()
    if (row.outcome === 'token_disabled') throw new PoolError('token_disabled', 'The token is disabled; enable it first.')
    if (row.outcome === 'too_long') {
      throw new PoolError('validation_failed', `seconds must be more than 0 and at most the pool's cooldown_max_seconds (${row.max_seconds ?? 0})`, {
        details: { field: 'seconds', location: 'body', issues: [{ field: 'seconds', message: `must be at most ${row.max_seconds ?? 0}` }] },
      })
    }
    return await this.healthChanged('cooling', tokenId, row, 'cooldown')
  }

  async disable (tokenId: Id, reason: string | null, pool?: string): Promise<{ token: TokenView, endedLease: EndedLease | null }> {
    await this.checkPoolOf(tokenId, pool)
    const row = await this.healthChange({ kind: 'disable', tokenId, reason })
    if (row.outcome === 'not_found') throw tokenNotFound(tokenId)
    return await this.healthChanged('disabled', tokenId, row, 'disabled')
  }

  async enable (tokenId: Id, pool?: string): Promise<TokenView> {
    await this.checkPoolOf(tokenId, pool)
    const row = await this.healthChange({ kind: 'enable', tokenId })
    if (row.outcome === 'not_found') throw tokenNotFound(tokenId)
    return (await this.healthChanged('enabled', tokenId, row, 'disabled')).token
  }

  async label (tokenId: Id, text: string | null, pool?: string): Promise<TokenView> {
    await this.checkPoolOf(tokenId, pool)
    const row = await withRetry(async () => await health.label(this.db, tokenId, text))
    if (row.outcome === 'not_found') throw tokenNotFound(tokenId)
    // It held the token's row for a moment, which a turn skips: waiters look again.
    this.hint.poke()
    return await this.get(tokenId)
  }

  private async healthChange (change: health.HealthChange): Promise<health.DbHealthChange> {
    return await this.healthChanges.submit(String(++this.healthRequests), change)
  }

  private async healthChanged (type: 'cooling' | 'disabled' | 'enabled', tokenId: Id, row: health.DbHealthChange, reason: ReleaseReason) {
    this.hint.poke()
    const endedLease: EndedLease | null = row.lease_id == null
      ? null
      : { pool: row.pool!, leaseId: row.lease_id, tokenId, userId: row.user_id!, startedAt: row.started_at!, releasedAt: row.released_at!, releaseReason: reason }
    if (endedLease !== null) this.emit('change', { type: 'released', lease: endedLease })
    const token = await this.get(tokenId)
    this.emit('change', { type, token })
    return { token, endedLease }
  }

  /** Under /api/pools/:pool/…, a token of another pool is not found. */
  private async checkPoolOf (tokenId: Id, pool: string | undefined): Promise<void> {
    if (pool === undefined) return
    const owner = await read(async () => await pools.poolOfToken(this.db, tokenId))
    if (owner !== pool) {
      await this.getPool(pool)
      throw tokenNotFound(tokenId)
    }
  }

  // ── reads ──────────────────────────────────────────────────────────────────

  /** One page of a pool's tokens in creation order, with the whole pool's counts. */
  async list (pool: string = DEFAULT_POOL, opts: { status?: TokenStatus, limit?: number, cursor?: string } = {}): Promise<TokenPage & { counts: PoolHead }> {
    const limit = opts.limit ?? 10_000
    const scope = `pool/${pool}`
    const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor, scope)
    const state = await this.poolState(pool)
    const rows = state.page(opts.status, after, limit + 1)
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return {
      counts: this.headOf(state),
      tokens: page.map((t) => state.view(t)!),
      nextCursor: rows.length > limit && last !== undefined ? encodeCursor(scope, last.position) : null,
    }
  }

  /**
   * Every token of a pool, a page at a time from the read model (no copy of the pool is
   * made), with the pool's counts. The one catch-up is made here, before the caller sends
   * anything: a database failure is an error answer, never a body cut after its first byte.
   */
  async streamTokens (pool: string, status?: TokenStatus): Promise<{ counts: PoolHead, tokens: AsyncGenerator<TokenView> }> {
    const state = await this.poolState(pool)
    return { counts: this.headOf(state), tokens: this.tokensFrom(pool, state, status) }
  }

  private async * tokensFrom (pool: string, first: PoolState, status?: TokenStatus): AsyncGenerator<TokenView> {
    let state = first
    let after: number | undefined
    for (;;) {
      // A page from the pool's current copy (a reload may have replaced it meanwhile).
      state = this.model.pool(pool) ?? state
      const rows = state.page(status, after, STREAM_PAGE)
      for (const t of rows) {
        // Between two yields time passes: a retired token whose lease ended is gone.
        const view = state.view(t)
        if (view !== undefined) yield view
      }
      if (rows.length < STREAM_PAGE) return
      after = rows.at(-1)!.position
    }
  }

  async head (pool: string): Promise<PoolHead> {
    return this.headOf(await this.poolState(pool))
  }

  /** One token, whichever pool holds it (or only in `pool`). */
  async get (tokenId: Id, pool?: string): Promise<TokenView> {
    await this.caughtUp()
    const found = this.model.token(tokenId)
    const view = found?.pool.view(found.token)
    if (found === undefined || view === undefined || (pool !== undefined && view.pool !== pool)) {
      if (pool !== undefined && this.model.pool(pool) === undefined) throw poolNotFound(pool)
      throw tokenNotFound(tokenId)
    }
    if (view.activeUsage !== null && found.token.renewable_until !== null) view.activeUsage.renewableUntil = new Date(found.token.renewable_until)
    return view
  }

  async history (tokenId: Id, limit: number, cursor: string | undefined, pool?: string): Promise<{ usages: Usage[], nextCursor: string | null }> {
    const scope = `token/${tokenId}`
    const before = cursor === undefined ? undefined : decodeCursor(cursor, scope)
    const rows = await read(async () => await usages.history(this.db, tokenId, limit + 1, before))
    // A usage names its token's pool; only a page without any asks which pool the token is in.
    const owner = rows[0]?.pool ?? await read(async () => await pools.poolOfToken(this.db, tokenId))
    if (owner === undefined || (pool !== undefined && owner !== pool)) {
      if (pool !== undefined) await this.getPool(pool)
      throw tokenNotFound(tokenId)
    }
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return { usages: page.map(usage), nextCursor: rows.length > limit && last !== undefined ? encodeCursor(scope, last.id) : null }
  }

  /** Every usage of a pool started in [since, until), oldest first, a page at a time. */
  async * export (pool: string, since?: Date, until?: Date): AsyncGenerator<Usage & { pool: string, tokenId: string }> {
    await this.getPool(pool)
    let after: { startedAt: Date, id: number } | undefined
    for (;;) {
      const rows = await read(async () => await usages.exportPage(this.db, pool, since, until, after, STREAM_PAGE))
      for (const r of rows) yield { ...usage(r), pool: r.pool, tokenId: r.token_id }
      if (rows.length < STREAM_PAGE) return
      const last = rows.at(-1)!
      after = { startedAt: last.started_at, id: last.id }
    }
  }

  /**
   * The current window's statistics of a pool, from the read model's counters: no scan at
   * any size. Reads answered after the same catch-up share one answer object, so that the
   * HTTP layer can serialize it once.
   */
  async stats (pool: string = DEFAULT_POOL, leastUsedLimit = 100): Promise<PoolStats> {
    const state = await this.poolState(pool)
    const key = `${pool}\0${leastUsedLimit}`
    if (this.statsMemo.generation !== this.model.generation) this.statsMemo = { generation: this.model.generation, answers: new Map() }
    let answer = this.statsMemo.answers.get(key)
    if (answer === undefined) {
      answer = Object.freeze(this.computeStats(state, leastUsedLimit))
      this.statsMemo.answers.set(key, answer)
    }
    return answer
  }

  private computeStats (state: PoolState, leastUsedLimit: number): PoolStats {
    const pool = state.name
    const u = state.usage(leastUsedLimit)
    return {
      pool,
      ...this.headOf(state),
      allocationsInWindow: u.allocationsInWindow,
      usageCount: { min: u.min, max: u.max, mean: u.mean },
      leastUsedCount: u.leastUsedCount,
      leastUsed: u.leastUsed.map((t) => ({ tokenId: t.id, usageCount: t.count })),
    }
  }

  /** The read model, caught up with every change committed before this call (a database failure is 503). */
  private async caughtUp (): Promise<void> {
    await read(async () => { await this.model.catchUp() })
  }

  private async poolState (pool: string): Promise<PoolState> {
    await this.caughtUp()
    const state = this.model.pool(pool)
    if (state === undefined) throw poolNotFound(pool)
    return state
  }

  private headOf (state: PoolState): PoolHead {
    const f = state.figures()
    return {
      total: f.total,
      active: f.active,
      available: f.available,
      cooling: f.cooling,
      disabled: f.disabled,
      waiting: this.model.waitingIn(state.name),
      windowStartedAt: new Date(f.windowStartedAt),
      windowResetsAt: new Date(f.windowResetsAt),
    }
  }

  // ── bookkeeping ────────────────────────────────────────────────────────────

  /**
   * Writes the end of leases that ran out, forgets counts of ended windows and prunes
   * old events. Availability never waits for it (a forget step holds the pool's batches
   * for its few milliseconds, so that none meets its locks); safe on every node at once.
   */
  async sweep (): Promise<number> {
    const rows = await leases.sweepExpired(this.db, 1000)
    if (rows.length > 0) this.hint.poke()
    for (const r of rows) this.emit('change', { type: 'released', lease: ended(r, 'expired') })
    for (const name of await pools.names(this.db)) {
      while (await pools.forgetOldCounts(this.db, name, FORGET_STEP) === FORGET_STEP);
    }
    await prune(this.db, KEEP_EVENTS)
    // Rows of dead nodes go even when nobody else waits (what was granted to them, back).
    await waiters.forgetDead(this.db)
    return rows.length
  }

  /** Whether the database answers and this node's read model has caught up with it. */
  async ready (): Promise<boolean> {
    try {
      await this.model.catchUp()
      return true
    } catch {
      return false
    }
  }
}

export interface PoolHead extends WindowInfo {
  total: number
  active: number
  available: number
  cooling: number
  disabled: number
  waiting: number
}

async function read<T> (op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (err) {
    throw translateDbError(err, true)
  }
}

function secondsLeft (until: Date, from: Date): number {
  return Math.max(0, Math.floor((until.getTime() - from.getTime()) / 1000))
}

function checkSettings (s: PoolSettings): void {
  if (s.lease_max_seconds < s.lease_ttl_seconds) {
    throw new PoolError('validation_failed', 'lease_max_seconds must be at least lease_ttl_seconds', {
      details: { field: 'lease_max_seconds', location: 'body', issues: [{ field: 'lease_max_seconds', message: 'must be at least lease_ttl_seconds' }] },
    })
  }
}

/** The answer to a waiter's submission that was dropped because nobody waits for it any more. */
function gone (userId: Id): leases.DbGrant {
  const none = { lease_id: null, token_id: null, started_at: null, expires_at: null, renewable_until: null, evicted_user_id: null }
  return { ...none, user_id: userId, outcome: 'gone', retry_after_ms: null, position: null, waiting: null, estimated_grant_at: null, wake_at: null, now: new Date() }
}

interface TokenUser {
  tokenId: string
  userId: string
}

/** One pair per key: the same release asked twice in one batch is one release with one answer. */
function distinctPairs (asks: Array<{ key: string, item: TokenUser }>): TokenUser[] {
  return [...new Map(asks.map((a) => [a.key, a.item])).values()]
}

function releasedLease (r: leases.DbRelease): EndedLease {
  return { pool: r.pool!, leaseId: r.lease_id!, tokenId: r.token_id, userId: r.user_id, startedAt: r.started_at!, releasedAt: r.released_at!, releaseReason: 'released' }
}

function renewedLease (r: leases.DbRenewal): Lease {
  return {
    pool: r.pool!,
    tokenId: r.token_id,
    userId: r.user_id,
    leaseId: r.lease_id!,
    startedAt: r.started_at!,
    expiresAt: r.expires_at!,
    renewableUntil: r.renewable_until!,
    expiresInSeconds: secondsLeft(r.expires_at!, r.now),
    evictedUserId: null,
    isNew: false,
  }
}

/** What a batched allocation asks for one request: may it wait; may it be served as a newcomer (not a waiter tried again)? */
interface Ask {
  queue: boolean
  fresh: boolean
}

function poolOfEvent (e: PoolEvent): string {
  switch (e.type) {
    case 'allocated': case 'renewed': case 'released': case 'cleared': return e.lease.pool
    case 'cooling': case 'disabled': case 'enabled': return e.token.pool
    case 'pool_changed': return e.pool.name
  }
}

function exhausted (pool: string, retryAfterMs: number | null): PoolError {
  if (retryAfterMs === null) {
    return new PoolError('pool_exhausted', 'No token is available and none will free up: every token is disabled.')
  }
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000))
  return new PoolError('pool_exhausted', 'No token is available; try again when the earliest lease or cooldown ends.', {
    retryAfterSeconds, details: { pool, retry_after_seconds: retryAfterSeconds },
  })
}

function poolNotFound (name: string): PoolError {
  return new PoolError('not_found', `There is no pool named ${name}.`)
}

function tokenNotFound (tokenId: string): PoolError {
  return new PoolError('not_found', 'The pool has no token with that id.')
}

function notHolder (): PoolError {
  return new PoolError('not_holder', 'That user does not hold that token now.')
}

function managedByConfig (): PoolError {
  return new PoolError('managed_by_config', 'The default pool is set by the environment (POOL_SIZE, LEASE_TTL_SECONDS, …) at every start; change it there.')
}

function ended (r: leases.DbEndedLease, reason: ReleaseReason): EndedLease {
  return { pool: r.pool, leaseId: r.lease_id, tokenId: r.token_id, userId: r.user_id, startedAt: r.started_at, releasedAt: r.released_at, releaseReason: reason }
}

function usage (u: usages.DbUsage): Usage {
  return { leaseId: u.id, userId: u.user_id, startedAt: u.started_at, expiresAt: u.expires_at, releasedAt: u.released_at, releaseReason: u.release_reason }
}
