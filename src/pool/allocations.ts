import { PoolError } from '../domain/errors.js'
import type { Id } from '../domain/ids.js'
import type { Lease } from '../domain/types.js'
import * as leases from '../store/leases.js'
import * as pools from '../store/pools.js'
import { withRetry } from '../store/sqlstate.js'
import { ended, exhausted, grantedLease, poolNotFound, quotaExceeded, read } from './answers.js'
import { Batcher } from './batcher.js'
import { batchesInFlight, MAX_QUEUED, type PoolContext, type WaitEnded } from './context.js'
import { ALIVE_MS, WaitingRoom, type WaitOptions } from './waiting.js'

/** What a batched allocation asks for one request: may it wait; may it be served as a newcomer (not a waiter tried again)? */
interface Ask {
  queue: boolean
  fresh: boolean
}

/** Per pool: batches that take the pool's turn shared (nobody waits) and exclusive (waiters). */
interface PoolBatchers {
  shared: Batcher<leases.DbGrant, Ask, Id>
  exclusive: Batcher<leases.DbGrant, Ask, Id>
}

/**
 * New leases (rules 2-7, 14), group-committed per pool, and the pool's queue of waiters
 * (rule 12), which this node keeps for its own requests.
 */
export class Allocations {
  private readonly batchers = new Map<string, PoolBatchers>()
  private readonly waiting: WaitingRoom

  constructor (
    private readonly ctx: PoolContext,
    /** gives back a lease granted to a waiter that has gone */
    giveBack: (pool: string, lease: { tokenId: Id, userId: Id }) => Promise<void>,
    /** reports how long a request that queued waited */
    private readonly waited: (e: WaitEnded) => void
  ) {
    this.waiting = new WaitingRoom({
      db: ctx.db,
      retry: async (pool, users, fresh) => {
        const b = this.batcher(pool).exclusive
        await Promise.all(users.map(async (u) => await b.submit(u, { queue: true, fresh }).catch((err: unknown) => { this.waiting.failed(pool, [u], err) })))
      },
      giveBack,
      timedOut: exhausted,
      poke: () => { ctx.hint.poke() },
    })
  }

  /**
   * A lease in `pool` for the user (rules 2-7, 14); with waitSeconds, waits in the pool's
   * queue while no token is free (rule 12).
   */
  async allocate (userId: Id, pool: string, opts: WaitOptions = {}): Promise<Lease> {
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
      this.forget(pool)
      throw poolNotFound(pool)
    }
    if (row.outcome === 'quota') throw quotaExceeded(pool, row.retry_after_ms)
    // 'queued' here: the same user's waiting request shared the batch; this one does not wait.
    if (row.outcome !== 'new' && row.outcome !== 'granted' && row.outcome !== 'existing') throw exhausted(pool, row.retry_after_ms)
    return grantedLease(pool, row)
  }

  /** Rule 12: wait_seconds is at most the pool's max_wait_seconds, never silently capped. */
  async checkWait (pool: string, waitSeconds: number): Promise<void> {
    const s = await read(async () => await pools.settings(this.ctx.db, pool))
    if (s === undefined) throw poolNotFound(pool)
    if (waitSeconds > s.max_wait_seconds) {
      const message = `must be at most the pool's max_wait_seconds (${s.max_wait_seconds})`
      throw new PoolError('validation_failed', `wait_seconds ${message}`, {
        details: { field: 'wait_seconds', location: 'body', issues: [{ field: 'wait_seconds', message }] },
      })
    }
  }

  /** Drops the batchers of a pool that is gone. */
  forget (pool: string): void {
    this.batchers.delete(pool)
  }

  /** Answers every waiter on this node (503) before the process goes. */
  async close (): Promise<void> {
    await this.waiting.close()
  }

  /** A change made here may free a token for a waiter here. */
  wake (pool: string): void {
    this.waiting.wake(pool)
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
      if (queuedAt !== undefined) this.waited({ pool, seconds: (performance.now() - queuedAt) / 1000, outcome })
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
  private batcher (pool: string): PoolBatchers {
    let b = this.batchers.get(pool)
    if (b === undefined) {
      // Exclusive batches take turns in the database anyway: one in flight.
      b = {
        shared: new Batcher(async (asks) => await this.allocateBatch(pool, asks, false), 256, batchesInFlight(this.ctx.db), MAX_QUEUED),
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
      await withRetry(async () => await leases.allocateMany(this.ctx.db, pool, { users, fresh, queue, node: this.waiting.node, exclusive, aliveMs: ALIVE_MS })))
    // Leases this batch found run out and wrote as such, before the grants that followed them.
    for (const r of expired) this.ctx.changed({ type: 'released', lease: ended(r, 'expired') })
    // One event per lease granted, however many requests asked for it (a waiter of another
    // node granted in this turn included: its node only hands the lease over).
    for (const r of rows) {
      if (r.outcome === 'new' || r.outcome === 'granted') this.ctx.changed({ type: 'allocated', lease: grantedLease(pool, r) })
    }
    const joined = rows.length > 0 &&
      this.waiting.apply(pool, rows, {
        waiters: new Set(queue),
        waiterOnly: new Set(queue.filter((u) => !plain.has(u))),
        retried: new Set(queue.filter((u) => !freshSet.has(u))),
        sentAfter,
      }, rows[0]!.now)
    // New leases, ends of ones that ran out and new waiters are news for the other nodes.
    if (joined || expired.length > 0 || rows.some((r) => r.outcome === 'new' || r.outcome === 'granted')) this.ctx.hint.poke()
    return new Map([...skipped, ...rows.map((r) => [r.user_id, r] as const)])
  }
}

/** The answer to a waiter's submission that was dropped because nobody waits for it any more. */
function gone (userId: Id): leases.DbGrant {
  const none = { lease_id: null, token_id: null, started_at: null, expires_at: null, renewable_until: null, evicted_user_id: null }
  return { ...none, user_id: userId, outcome: 'gone', retry_after_ms: null, position: null, waiting: null, estimated_grant_at: null, wake_at: null, now: new Date() }
}
