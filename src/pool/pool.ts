import { EventEmitter } from 'node:events'
import { decodeCursor, encodeCursor } from '../domain/cursor.js'
import { PoolError } from '../domain/errors.js'
import type { EndedLease, Lease, PoolCounts, PoolStats, ReleaseReason, TokenStatus, TokenView, Usage, WindowInfo } from '../domain/types.js'
import type { Db } from '../store/db.js'
import * as leases from '../store/leases.js'
import { migrate } from '../store/migrate.js'
import { translateDbError, withRetry } from '../store/sqlstate.js'
import * as tokens from '../store/tokens.js'
import { history as readHistory } from '../store/usages.js'
import { notifyReaders } from '../store/events.js'
import { Batcher } from './batcher.js'
import { CommitHint } from './commit-hint.js'

export interface PoolOptions {
  poolSize: number
  /** seconds; fractional allowed */
  leaseTtlSeconds: number
  /** hours */
  usageWindowHours: number
  onExhausted: 'evict_oldest' | 'reject'
  /** ms between expiry sweeps; 0 turns the sweep off (tests drive it) */
  sweepIntervalMs?: number
}

export type PoolEvent =
  | { type: 'allocated', lease: Lease }
  | { type: 'released', lease: EndedLease }
  | { type: 'cleared', lease: EndedLease }

/** What each pool use case means, as transactions over the store. Emits a PoolEvent after each commit. */
export class TokenPool extends EventEmitter<{ change: [PoolEvent] }> {
  private readonly batcher: Batcher<leases.DbGrant>
  private readonly hint: CommitHint
  private sweepTimer: NodeJS.Timeout | undefined

  constructor (readonly db: Db, readonly options: PoolOptions) {
    super()
    const terms: leases.LeaseTerms = {
      ttlSeconds: options.leaseTtlSeconds,
      windowHours: options.usageWindowHours,
      evict: options.onExhausted === 'evict_oldest',
    }
    // PGlite has one connection; PostgreSQL gets a few batches in flight to overlap round trips.
    const inFlight = db.kind === 'pglite' ? 1 : 4
    this.hint = new CommitHint(async () => { await notifyReaders(db) })
    this.batcher = new Batcher(async (userIds) => {
      const rows = await withRetry(async () => await leases.allocateMany(db, userIds, terms))
      // Anything but a returned lease wrote usages (new leases, or ends of ones that ran out).
      if (rows.some((r) => r.outcome !== 'existing')) this.hint.poke()
      return new Map(rows.map((r) => [r.user_id, r]))
    }, 256, inFlight)
  }

  /** Applies the schema and sizes the pool; then keeps expiry bookkeeping going. */
  async start (): Promise<void> {
    await migrate(this.db)
    await withRetry(async () => await tokens.provision(this.db, this.options.poolSize))
    const every = this.options.sweepIntervalMs ?? 1000
    if (every > 0) {
      this.sweepTimer = setInterval(() => { this.sweep().catch(() => {}) }, every)
      this.sweepTimer.unref()
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.sweepTimer)
  }

  async allocate (userId: string): Promise<Lease> {
    const row = await this.batcher.submit(userId)
    if (row.outcome === 'exhausted') {
      const retryAfterSeconds = Math.max(1, Math.ceil((row.retry_after_ms ?? 1000) / 1000))
      throw new PoolError('pool_exhausted', 'Every token is leased; try again when the earliest lease expires.', {
        retryAfterSeconds, details: { retry_after_seconds: retryAfterSeconds },
      })
    }
    const lease: Lease = {
      tokenId: row.token_id!,
      userId,
      leaseId: row.lease_id!,
      startedAt: row.started_at!,
      expiresAt: row.expires_at!,
      expiresInSeconds: row.outcome === 'new'
        ? Math.floor(this.options.leaseTtlSeconds)
        : Math.max(0, Math.floor((row.expires_at!.getTime() - row.now.getTime()) / 1000)),
      evictedUserId: row.evicted_user_id,
      isNew: row.outcome === 'new',
    }
    if (lease.isNew) this.emit('change', { type: 'allocated', lease })
    return lease
  }

  async release (tokenId: string, userId: string): Promise<EndedLease> {
    const row = await withRetry(async () => await leases.release(this.db, tokenId, userId))
    if (row.outcome === 'not_found') throw notFound(tokenId)
    if (row.outcome === 'not_holder') {
      throw new PoolError('not_holder', 'That user does not hold that token now.', { details: { token_id: tokenId, user_id: userId } })
    }
    const lease: EndedLease = {
      leaseId: row.lease_id!, tokenId, userId, startedAt: row.started_at!, releasedAt: row.released_at!, releaseReason: 'released',
    }
    this.hint.poke()
    this.emit('change', { type: 'released', lease })
    return lease
  }

  async clear (): Promise<number> {
    const rows = await withRetry(async () => await leases.clear(this.db))
    if (rows.length > 0) this.hint.poke()
    for (const r of rows) this.emit('change', { type: 'cleared', lease: ended(r, 'cleared') })
    return rows.length
  }

  /** Writes the end of leases that ran out and rolls a finished window. Safe on every node at once. */
  async sweep (): Promise<number> {
    await leases.settleWindow(this.db, this.options.usageWindowHours)
    const rows = await leases.sweepExpired(this.db, 1000)
    if (rows.length > 0) this.hint.poke()
    for (const r of rows) this.emit('change', { type: 'released', lease: ended(r, 'expired') })
    return rows.length
  }

  async list (status?: TokenStatus): Promise<{ tokens: TokenView[], counts: PoolCounts }> {
    const { tokens: rows, counts } = await read(async () => await tokens.listTokens(this.db, this.options.usageWindowHours, status))
    return {
      tokens: rows.map(tokenView),
      counts: { ...this.window(counts.window_started_at), total: counts.total, active: counts.active, available: counts.total - counts.active },
    }
  }

  async get (tokenId: string): Promise<TokenView> {
    const row = await read(async () => await tokens.getToken(this.db, this.options.usageWindowHours, tokenId))
    if (row === undefined) throw notFound(tokenId)
    return tokenView(row)
  }

  async history (tokenId: string, limit: number, cursor: string | undefined): Promise<{ usages: Usage[], nextCursor: string | null }> {
    const before = cursor === undefined ? undefined : decodeCursor(cursor)
    const [exists, rows] = await read(async () => await Promise.all([
      tokens.tokenExists(this.db, tokenId),
      readHistory(this.db, tokenId, limit + 1, before),
    ]))
    if (!exists) throw notFound(tokenId)
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return {
      usages: page.map((u) => ({ leaseId: u.id, userId: u.user_id, startedAt: u.started_at, releasedAt: u.released_at, releaseReason: u.release_reason })),
      nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.id) : null,
    }
  }

  /** The current window's statistics; `leastUsed: false` skips listing the least-used tokens (metrics need only the figures). */
  async stats ({ leastUsed = true }: { leastUsed?: boolean } = {}): Promise<PoolStats> {
    const s = await read(async () => await tokens.stats(this.db, this.options.usageWindowHours, leastUsed))
    return {
      ...this.window(s.window_started_at),
      total: s.total,
      active: s.active,
      available: s.total - s.active,
      allocationsInWindow: s.allocations_in_window,
      usageCount: { min: s.min ?? 0, max: s.max ?? 0, mean: s.mean ?? 0 },
      leastUsed: (s.least_used ?? []).map((t) => ({ tokenId: t.token_id, usageCount: t.usage_count })),
    }
  }

  /** Whether the database answers. */
  async ready (): Promise<boolean> {
    try {
      await this.db.query('SELECT 1')
      return true
    } catch {
      return false
    }
  }

  private window (startedAt: Date): WindowInfo {
    return { windowStartedAt: startedAt, windowResetsAt: new Date(startedAt.getTime() + this.options.usageWindowHours * 3_600_000) }
  }
}

async function read<T> (op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (err) {
    throw translateDbError(err)
  }
}

function notFound (tokenId: string): PoolError {
  return new PoolError('not_found', 'The pool has no token with that id.', { details: { token_id: tokenId } })
}

function ended (r: leases.DbEndedLease, reason: ReleaseReason): EndedLease {
  return { leaseId: r.lease_id, tokenId: r.token_id, userId: r.user_id, startedAt: r.started_at, releasedAt: r.released_at, releaseReason: reason }
}

function tokenView (r: tokens.DbToken): TokenView {
  return {
    id: r.id,
    status: r.active ? 'active' : 'available',
    usageCount: r.usage_count,
    activeUsage: r.active ? { userId: r.user_id!, startedAt: r.started_at!, expiresAt: r.expires_at! } : null,
  }
}
