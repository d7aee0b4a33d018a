import { EventEmitter } from 'node:events'
import type { Id } from '../domain/ids.js'
import {
  DEFAULT_POOL, settingChanges, withDefaults,
  type EndedLease, type Lease, type PoolSettings, type SettingChange, type PoolStats, type PoolView, type TokenStatus, type TokenView, type Usage,
} from '../domain/types.js'
import type { Db } from '../store/db.js'
import { notifyReaders, prune } from '../store/events.js'
import * as leases from '../store/leases.js'
import { migrate } from '../store/migrate.js'
import * as pools from '../store/pools.js'
import { withRetry } from '../store/sqlstate.js'
import * as waiters from '../store/waiters.js'
import { Allocations } from './allocations.js'
import { ended, read } from './answers.js'
import { CommitHint } from './commit-hint.js'
import type { PoolContext, PoolEvent, PoolHead, WaitEnded } from './context.js'
import { LeaseEnds } from './lease-ends.js'
import { ReadModel } from './model/read-model.js'
import { PoolAdmin } from './pool-admin.js'
import { PoolReads, type TokenPage } from './reads.js'
import { TokenHealth } from './token-health.js'
import type { WaitOptions } from './waiting.js'

export interface PoolOptions {
  /** the `default` pool's settings, from the environment at every start */
  defaultPool: Partial<PoolSettings>
  /** ms between expiry sweeps; 0 turns the sweep off (tests drive it) */
  sweepIntervalMs?: number
}

// Counts of an older window forgotten per statement by the sweep; each statement holds the
// pool's allocations while it runs (migration 0027), so it is kept short.
const FORGET_STEP = 500
// Events kept for clients that reconnect: at least this many, and at least the last hour.
const KEEP_EVENTS = 100_000

/**
 * The service's use cases, one entry point for the HTTP layer and the CLI: each group lives
 * in its own module (allocations, lease ends, token health, pool admin, reads), sharing one
 * database, one read model and one commit hint. Emits a PoolEvent after each commit.
 */
export class TokenPool extends EventEmitter<{ change: [PoolEvent], waited: [WaitEnded] }> {
  readonly defaultSettings: PoolSettings
  private readonly model: ReadModel
  private readonly hint: CommitHint
  private readonly reads: PoolReads
  private readonly allocations: Allocations
  private readonly leaseEnds: LeaseEnds
  private readonly health: TokenHealth
  private readonly admin: PoolAdmin
  private sweepTimer: NodeJS.Timeout | undefined

  constructor (readonly db: Db, readonly options: PoolOptions) {
    super()
    this.defaultSettings = withDefaults(options.defaultPool)
    this.model = new ReadModel(db)
    this.hint = new CommitHint(async () => { await notifyReaders(db) })
    const ctx: PoolContext = { db, model: this.model, hint: this.hint, changed: (e) => this.emit('change', e) }
    this.reads = new PoolReads(ctx)
    this.leaseEnds = new LeaseEnds(ctx, this.reads)
    this.allocations = new Allocations(
      ctx,
      async (pool, lease) => { await this.leaseEnds.release(lease.tokenId, lease.userId, pool) },
      (e) => this.emit('waited', e)
    )
    this.health = new TokenHealth(ctx, this.reads)
    this.admin = new PoolAdmin(ctx, this.reads, (name) => { this.allocations.forget(name) })
    // A change made here may free a token for a waiter here.
    this.on('change', (e) => { this.allocations.wake(poolOfEvent(e)) })
  }

  /**
   * Applies the schema and sets the default pool from the configuration; then keeps
   * bookkeeping going. Returns what this start changed in the default pool's stored
   * settings: a node started with another configuration changes them for every node.
   */
  async start (): Promise<SettingChange[]> {
    const migrated = await migrate(this.db)
    const changed = await withRetry(async () => {
      // A schema made or brought up to date by this start holds placeholders, not a node's
      // configuration; so does a default pool that was never given its tokens.
      const before = migrated === 0 && await pools.isProvisioned(this.db, DEFAULT_POOL)
        ? await pools.settings(this.db, DEFAULT_POOL)
        : undefined
      await pools.update(this.db, DEFAULT_POOL, this.defaultSettings, false)
      await pools.provision(this.db, DEFAULT_POOL)
      return before === undefined ? [] : settingChanges(before, this.defaultSettings)
    })
    await read(async () => { await this.model.start() })
    const every = this.options.sweepIntervalMs ?? 1000
    if (every > 0) {
      this.sweepTimer = setInterval(() => { this.sweep().catch(() => {}) }, every)
      this.sweepTimer.unref()
    }
    return changed
  }

  /** Stops bookkeeping and answers every waiter on this node (503) before the process goes. */
  async stop (): Promise<void> {
    clearInterval(this.sweepTimer)
    this.model.stop()
    await this.allocations.close()
  }

  // ── pools ──────────────────────────────────────────────────────────────────

  async listPools (): Promise<PoolView[]> { return await this.reads.listPools() }
  async getPool (name: string): Promise<PoolView> { return await this.reads.getPool(name) }
  async createPool (name: string, given: Partial<PoolSettings>): Promise<PoolView> { return await this.admin.createPool(name, given) }
  async updatePool (name: string, changes: Partial<PoolSettings>): Promise<PoolView> { return await this.admin.updatePool(name, changes) }
  async deletePool (name: string, force: boolean): Promise<void> { await this.admin.deletePool(name, force) }

  // ── leases ─────────────────────────────────────────────────────────────────

  async allocate (userId: Id, pool: string = DEFAULT_POOL, opts: WaitOptions = {}): Promise<Lease> {
    return await this.allocations.allocate(userId, pool, opts)
  }

  async checkWait (pool: string, waitSeconds: number): Promise<void> { await this.allocations.checkWait(pool, waitSeconds) }
  async release (tokenId: Id, userId: Id, pool?: string): Promise<EndedLease> { return await this.leaseEnds.release(tokenId, userId, pool) }
  async renew (tokenId: Id, userId: Id, pool?: string): Promise<Lease> { return await this.leaseEnds.renew(tokenId, userId, pool) }
  async clear (pool: string = DEFAULT_POOL): Promise<number> { return await this.leaseEnds.clear(pool) }

  // ── token health ───────────────────────────────────────────────────────────

  async cooldown (tokenId: Id, userId: Id | null, seconds: number, pool?: string): Promise<{ token: TokenView, endedLease: EndedLease | null }> {
    return await this.health.cooldown(tokenId, userId, seconds, pool)
  }

  async disable (tokenId: Id, reason: string | null, pool?: string): Promise<{ token: TokenView, endedLease: EndedLease | null }> {
    return await this.health.disable(tokenId, reason, pool)
  }

  async enable (tokenId: Id, pool?: string): Promise<TokenView> { return await this.health.enable(tokenId, pool) }
  async label (tokenId: Id, text: string | null, pool?: string): Promise<TokenView> { return await this.health.label(tokenId, text, pool) }

  // ── reads ──────────────────────────────────────────────────────────────────

  async list (pool: string = DEFAULT_POOL, opts: { status?: TokenStatus, limit?: number, cursor?: string } = {}): Promise<TokenPage & { counts: PoolHead }> {
    return await this.reads.list(pool, opts)
  }

  async streamTokens (pool: string, status?: TokenStatus): Promise<{ counts: PoolHead, tokens: AsyncGenerator<TokenView> }> {
    return await this.reads.streamTokens(pool, status)
  }

  async head (pool: string): Promise<PoolHead> { return await this.reads.head(pool) }
  async get (tokenId: Id, pool?: string): Promise<TokenView> { return await this.reads.get(tokenId, pool) }

  async history (tokenId: Id, limit: number, cursor: string | undefined, pool?: string): Promise<{ usages: Usage[], nextCursor: string | null }> {
    return await this.reads.history(tokenId, limit, cursor, pool)
  }

  export (pool: string, since?: Date, until?: Date): AsyncGenerator<Usage & { pool: string, tokenId: string }> {
    return this.reads.export(pool, since, until)
  }

  async stats (pool: string = DEFAULT_POOL, leastUsedLimit = 100): Promise<PoolStats> { return await this.reads.stats(pool, leastUsedLimit) }

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
    // A resize cut short by a failure (PoolAdmin.provision) is finished here.
    for (const state of this.model.allPools()) {
      if (state.needsProvisioning()) await pools.provision(this.db, state.name)
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

function poolOfEvent (e: PoolEvent): string {
  switch (e.type) {
    case 'allocated': case 'renewed': case 'released': case 'cleared': return e.lease.pool
    case 'cooling': case 'disabled': case 'enabled': return e.token.pool
    case 'pool_changed': return e.pool.name
  }
}
