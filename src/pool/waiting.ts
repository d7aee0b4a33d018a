import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { PoolError } from '../domain/errors.js'
import type { Id } from '../domain/ids.js'
import type { Db } from '../store/db.js'
import { currentSchema, EVENTS_CHANNEL } from '../store/events.js'
import type { DbGrant } from '../store/leases.js'
import * as waiters from '../store/waiters.js'

/** Where a waiting request stands (rule 12). */
export interface QueueState {
  position: number
  waiting: number
  /** the latest it is served, barring renewals, longer cooldowns, disables or a shrink */
  estimatedGrantAt: Date | null
}

export interface WaitOptions {
  /** seconds to wait at most when no token is free (0, the default, refuses at once) */
  waitSeconds?: number
  /** the caller went away: leave the queue (and give back a lease granted meanwhile) */
  signal?: AbortSignal
  /** called on joining the queue and whenever the position, the count or the time changes */
  onQueued?: (state: QueueState) => void
}

/** What the waiting room needs from the pool that owns it. */
export interface RoomDeps {
  db: Db
  /**
   * submits these users of a pool for allocation, as waiters, exclusively; results come
   * back through apply(). `fresh`: they may join the queue (else only their place counts)
   */
  retry: (pool: string, users: Id[], fresh: boolean) => Promise<void>
  /** gives back a lease granted to a waiter that has gone */
  giveBack: (pool: string, lease: { tokenId: Id, userId: Id }) => Promise<void>
  /** the answer to a waiter whose time ran out */
  timedOut: (pool: string, retryAfterMs: number | null) => PoolError
  /** tells the other nodes the queue changed */
  poke: () => void
}

// A queue row lives this long past its node's last heartbeat: a killed node blocks a
// queue at most this long. Heartbeats come five times as often; at 2 s, a database busy
// with a long queue let live nodes' rows lapse (measured).
export const ALIVE_MS = 5000
const HEARTBEAT_MS = ALIVE_MS / 5
// Waiters look again this often whatever happens: the bound on a lost wake-up.
const POLL_MS = 1000
// How long a lease this node answered is remembered: far longer than a batch can be in flight.
const ANSWERED_MS = 60_000

interface Request {
  /** the order it began waiting in on this node: an answer sent before it is not its own */
  seq: number
  resolve: (row: DbGrant) => void
  reject: (err: unknown) => void
  onQueued: ((state: QueueState) => void) | undefined
  last: QueueState | undefined
  timer: NodeJS.Timeout
  unlink: () => void
}

/** One user's requests waiting in one pool on this node: one queue row, one place. */
interface Waiter {
  requests: Set<Request>
  /** it has a row in the queue (answered 'queued' at least once) */
  queued: boolean
  /** for a time-out's Retry-After: ms from `at` (local clock) */
  retryAfter: { ms: number | null, at: number }
  /** the last attempt failed to reach the database */
  lastError: unknown
}

/** What a batch asked, for apply(). */
export interface Asked {
  /** users asked for as waiters */
  waiters: Set<Id>
  /** users asked for by waiters alone (a lease granted to nobody left is given back) */
  waiterOnly: Set<Id>
  /** waiters tried again (not newcomers) */
  retried: Set<Id>
  /** the last request that began waiting before the batch was sent (sentAfter()) */
  sentAfter: number
}

interface PoolQueue {
  waiters: Map<Id, Waiter>
  timer: NodeJS.Timeout | undefined
  trying: boolean
  again: boolean
}

/**
 * This node's waiting requests. The queue itself is in the database (tp_allocate decides
 * every turn); here each waiting user is tried again whenever a token may have freed:
 * a change on this node, a notification from another, the next deadline the database
 * named (an expiry or a cooldown's end, exact to the database's clock), and a poll as
 * the floor. A heartbeat keeps this node's rows alive.
 */
export class WaitingRoom {
  readonly node = randomUUID()
  private readonly pools = new Map<string, PoolQueue>()
  /** per pool and user: batches asking for it as a waiter that the database has not answered yet */
  private readonly sending = new Map<string, number>()
  /** called when no batch asks for that pool and user any more */
  private readonly idle = new Map<string, Array<() => void>>()
  /**
   * Leases this node answered lately (id → when). Two batches may ask for one waiter at
   * once; the answer that comes second finds it served and must not give back the lease
   * the first one handed it (the same lease, granted by one and seen by the other).
   */
  private readonly answered = new Map<number, number>()
  private heartbeat: NodeJS.Timeout | undefined
  private poll: NodeJS.Timeout | undefined
  private unlisten: Promise<(() => Promise<void>) | undefined> | undefined
  private closed = false
  /** leases being given back and rows being taken out, for close() */
  private readonly unsettled = new Set<Promise<void>>()
  /** requests that began waiting on this node so far (each request's seq) */
  private entered = 0

  constructor (private readonly deps: RoomDeps) {}

  /** Whether this user still waits in this pool on this node. */
  has (pool: string, userId: Id): boolean {
    return (this.pools.get(pool)?.waiters.get(userId)?.requests.size ?? 0) > 0
  }

  /**
   * Registers a request that may wait; the promise settles through apply() (a lease or
   * a refusal), at its time-out, or when its signal aborts. The caller then submits it.
   */
  enter (pool: string, userId: Id, waitSeconds: number, opts: WaitOptions): Promise<DbGrant> {
    if (this.closed) return Promise.reject(shuttingDown())
    this.start()
    let q = this.pools.get(pool)
    if (q === undefined) {
      q = { waiters: new Map(), timer: undefined, trying: false, again: false }
      this.pools.set(pool, q)
    }
    let w = q.waiters.get(userId)
    if (w === undefined) {
      w = { requests: new Set(), queued: false, retryAfter: { ms: null, at: Date.now() }, lastError: undefined }
      q.waiters.set(userId, w)
    }
    const waiter = w
    return new Promise<DbGrant>((resolve, reject) => {
      const onAbort = () => { this.drop(pool, userId, req, new Error('the caller went away')) }
      const req: Request = {
        seq: ++this.entered,
        resolve,
        reject,
        onQueued: opts.onQueued,
        last: undefined,
        timer: setTimeout(() => {
          const elapsed = Date.now() - waiter.retryAfter.at
          const err = waiter.lastError !== undefined
            ? waiter.lastError
            : this.deps.timedOut(pool, waiter.retryAfter.ms === null ? null : Math.max(1, waiter.retryAfter.ms - elapsed))
          this.drop(pool, userId, req, err)
        }, waitSeconds * 1000),
        unlink: () => { opts.signal?.removeEventListener('abort', onAbort) },
      }
      waiter.requests.add(req)
      if (opts.signal?.aborted === true) onAbort()
      else opts.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Settles this node's waiters from a batch's answers. `asked.waiters` are the users the
   * batch asked for as waiters, `waiterOnly` those asked for by waiters alone (so a lease
   * granted to nobody left is given back).
   * `sentAfter` is the last request that began waiting before the batch was sent.
   * Returns whether anyone joined the queue.
   */
  apply (pool: string, rows: DbGrant[], asked: Asked, dbNow: Date): boolean {
    const q = this.pools.get(pool)
    let wakeAt: number | undefined
    let joined = false
    // In the order the database answered them: the order they came in.
    const requeue: Id[] = []
    for (const row of rows) {
      const w = q?.waiters.get(row.user_id)
      const lease = row.lease_id !== null && ['new', 'existing', 'granted'].includes(row.outcome) ? row.lease_id : undefined
      if (w === undefined || w.requests.size === 0) {
        // Nobody here waits for this answer any more: the waiter left while it was decided,
        // or another batch served it already.
        if (!asked.waiterOnly.has(row.user_id)) {
          // A plain request's lease: only a batch out now asking for this user as a waiter
          // could name it later (no bookkeeping on the allocate path without waiters).
          if (lease !== undefined && this.sending.has(`${pool}\n${row.user_id}`)) this.remember(lease)
        } else if (lease === undefined || !this.answered.has(lease)) this.orphan(pool, row, asked.retried.has(row.user_id))
        continue
      }
      // An answer to this user's request that does not wait says nothing to its waiting
      // ones, unless it is a lease (theirs too now: granted in this turn for it, or for a
      // waiter this batch did not ask about) or the pool is gone.
      if (!asked.waiters.has(row.user_id) && !['new', 'existing', 'granted', 'no_pool'].includes(row.outcome)) continue
      // A lease the user held when the batch was sent may have been given back since: it
      // says nothing to a request that began waiting after that (its own batch answers it).
      const answers = row.outcome === 'existing' ? [...w.requests].filter((req) => req.seq <= asked.sentAfter) : [...w.requests]
      if (answers.length === 0) continue
      w.lastError = undefined
      switch (row.outcome) {
        case 'requeue':
          requeue.push(row.user_id)
          break
        case 'gone':
          // Its place lapsed (a heartbeat came too late): join again, at the end. Before it
          // first joined, its own first try is still under way.
          if (w.queued) requeue.push(row.user_id)
          break
        case 'queued': {
          joined ||= !w.queued
          w.queued = true
          w.retryAfter = { ms: row.retry_after_ms, at: Date.now() }
          const state: QueueState = { position: row.position!, waiting: row.waiting!, estimatedGrantAt: row.estimated_grant_at }
          for (const req of w.requests) {
            if (req.onQueued !== undefined && !sameState(req.last, state)) {
              req.last = state
              req.onQueued(state)
            }
          }
          if (row.wake_at !== null) {
            // The database's deadline on this machine's clock.
            const at = Date.now() + (row.wake_at.getTime() - dbNow.getTime())
            wakeAt = Math.min(wakeAt ?? at, at)
          }
          break
        }
        default:
          if (answers.length === w.requests.size) {
            q!.waiters.delete(row.user_id)
            // Granted in a turn that did not ask for it: its row is marked, not gone.
            if (row.outcome === 'granted') waiters.handedOver(this.deps.db, pool, row.user_id, this.node).catch(() => {})
          }
          if (lease !== undefined) this.remember(lease)
          for (const req of answers) {
            w.requests.delete(req)
            this.finish(req)
          }
          for (const req of answers) req.resolve(row)
      }
    }
    if (requeue.length > 0) this.deps.retry(pool, requeue, true).catch(() => {})
    // A batch that names no deadline (a refusal, a lease) leaves the one already set.
    if (q !== undefined && wakeAt !== undefined) this.schedule(pool, q, wakeAt)
    this.forgetIfEmpty(pool)
    return joined
  }

  /** The last request that began waiting so far: a batch sent now answers it and those before. */
  sentAfter (): number {
    return this.entered
  }

  /**
   * Brackets a batch that asks for these users as waiters. A waiter that leaves meanwhile
   * keeps its row until the batch is answered (apply() then takes it out, or gives back
   * its lease), so that the batch can't put it back in the queue after it left.
   */
  async asking<T> (pool: string, users: Id[], batch: () => Promise<T>): Promise<T> {
    const keys = users.map((u) => `${pool}\n${u}`)
    for (const k of keys) this.sending.set(k, (this.sending.get(k) ?? 0) + 1)
    let answered = false
    try {
      const result = await batch()
      answered = true
      return result
    } finally {
      for (const [i, k] of keys.entries()) {
        const n = this.sending.get(k)! - 1
        if (n > 0) {
          this.sending.set(k, n)
        } else {
          this.sending.delete(k)
          for (const fn of this.idle.get(k) ?? []) fn()
          this.idle.delete(k)
        }
        // Unanswered (the batch failed): whatever it did is undone, but a row it kept must go.
        if (!answered && n === 0 && !this.has(pool, users[i]!)) this.leave(pool, users[i]!)
      }
    }
  }

  /** A batch failed: waiters not yet in the queue get the error; the others keep waiting and try again. */
  failed (pool: string, users: Id[], err: unknown): void {
    const q = this.pools.get(pool)
    if (q === undefined) return
    for (const userId of users) {
      const w = q.waiters.get(userId)
      if (w === undefined) continue
      if (w.queued) {
        w.lastError = err
        continue
      }
      q.waiters.delete(userId)
      for (const req of w.requests) {
        this.finish(req)
        req.reject(err)
      }
    }
    this.forgetIfEmpty(pool)
  }

  /** Something changed in `pool` (or anywhere, without it): waiters there try again. */
  wake (pool?: string): void {
    if (pool !== undefined) {
      if (this.pools.has(pool)) this.tryAgain(pool)
      return
    }
    for (const name of this.pools.keys()) this.tryAgain(name)
  }

  /** Answers every waiter with 503 and leaves every queue: the node is stopping. */
  async close (): Promise<void> {
    this.closed = true
    const err = shuttingDown()
    for (const [pool, q] of this.pools) {
      clearTimeout(q.timer)
      for (const w of q.waiters.values()) {
        for (const req of w.requests) {
          this.finish(req)
          req.reject(err)
        }
      }
      this.pools.delete(pool)
    }
    this.stop()
    // Batches still in the database answer first (a grant goes back through apply()), and
    // what their answers set going (giving a lease back) ends before the node does.
    for (let i = 0; i < 500 && this.sending.size > 0; i++) await sleep(10)
    await Promise.all(this.unsettled)
    await waiters.leaveAll(this.deps.db, this.node).catch(() => {})
    const unlisten = await this.unlisten?.catch(() => undefined)
    await unlisten?.().catch(() => {})
  }

  /** A request times out or goes away; the last of its user leaves the queue before it is answered. */
  private drop (pool: string, userId: Id, req: Request, err: unknown): void {
    const q = this.pools.get(pool)
    const w = q?.waiters.get(userId)
    if (w === undefined || !w.requests.has(req)) return
    this.finish(req)
    w.requests.delete(req)
    if (w.requests.size > 0) {
      req.reject(err)
      return
    }
    q!.waiters.delete(userId)
    this.forgetIfEmpty(pool)
    const key = `${pool}\n${userId}`
    if (!w.queued && !this.sending.has(key)) {
      req.reject(err)
      return
    }
    // A batch asking for it is in the database: only once it is answered can the row go
    // for good (apply() also gives back a lease it granted).
    const settled = this.sending.has(key) ? new Promise<void>((resolve) => { this.onIdle(key, resolve) }) : Promise.resolve()
    settled
      .then(async () => { await this.leaveNow(pool, userId) })
      .finally(() => { req.reject(err) })
  }

  private remember (leaseId: number): void {
    const now = Date.now()
    this.answered.set(leaseId, now)
    for (const [id, at] of this.answered) {
      if (now - at < ANSWERED_MS) break
      this.answered.delete(id)
    }
  }

  private onIdle (key: string, fn: () => void): void {
    const list = this.idle.get(key) ?? []
    list.push(fn)
    this.idle.set(key, list)
  }

  private finish (req: Request): void {
    clearTimeout(req.timer)
    req.unlink()
  }

  /**
   * An answer for a waiter that left meanwhile: a lease granted to it goes back (for a
   * waiter tried again, a lease it holds was granted while it waited), a queue row goes.
   */
  private orphan (pool: string, row: DbGrant, retried: boolean): void {
    if (row.outcome === 'new' || (row.outcome === 'existing' && retried)) {
      this.track(this.deps.giveBack(pool, { tokenId: row.token_id!, userId: row.user_id }))
    } else if (row.outcome === 'queued') this.leave(pool, row.user_id)
  }

  private leave (pool: string, userId: Id): void {
    this.track(this.leaveNow(pool, userId))
  }

  /** Work that no caller awaits (a lease given back, a row taken out); close() waits for it. */
  private track (work: Promise<void>): void {
    const p: Promise<void> = work.catch(() => {}).finally(() => { this.unsettled.delete(p) })
    this.unsettled.add(p)
  }

  /** Out of the queue, in turn; a lease a turn granted it meanwhile goes back (in the database). */
  private async leaveNow (pool: string, userId: Id): Promise<void> {
    try {
      await waiters.leave(this.deps.db, pool, userId, this.node)
      this.deps.poke()
    } catch {}
  }

  /** One try of a pool's waiters at a time; wake-ups meanwhile fold into one more. */
  private tryAgain (pool: string): void {
    const q = this.pools.get(pool)
    if (q === undefined) return
    if (q.trying) {
      q.again = true
      return
    }
    const users = [...q.waiters.keys()]
    if (users.length === 0) return
    q.trying = true
    this.deps.retry(pool, users, false).finally(() => {
      q.trying = false
      if (q.again && this.pools.get(pool) === q) {
        q.again = false
        this.tryAgain(pool)
      }
    })
  }

  private schedule (pool: string, q: PoolQueue, at: number | undefined): void {
    clearTimeout(q.timer)
    q.timer = undefined
    if (at === undefined || q.waiters.size === 0) return
    q.timer = setTimeout(() => { this.tryAgain(pool) }, Math.max(0, at - Date.now()))
  }

  private forgetIfEmpty (pool: string): void {
    const q = this.pools.get(pool)
    if (q !== undefined && q.waiters.size === 0) {
      clearTimeout(q.timer)
      this.pools.delete(pool)
    }
    if (this.pools.size === 0) this.stop()
  }

  private start (): void {
    this.heartbeat ??= setInterval(() => {
      const rows = [...this.pools].flatMap(([pool, q]) => [...q.waiters.keys()].map((user) => ({ pool, user })))
      waiters.heartbeat(this.deps.db, this.node, rows, ALIVE_MS).catch(() => {})
    }, HEARTBEAT_MS)
    this.poll ??= setInterval(() => { this.wake() }, POLL_MS)
    // Every node's commits are announced on the event channel: any of them may free a token.
    this.unlisten ??= (async () => {
      const schema = await currentSchema(this.deps.db)
      return await this.deps.db.listen(EVENTS_CHANNEL, (payload) => { if (payload === schema) this.wake() }, () => { this.wake() })
    })().catch(() => {
      // The next waiter tries again; meanwhile the poll wakes everyone.
      this.unlisten = undefined
      return undefined
    })
  }

  private stop (): void {
    clearInterval(this.heartbeat)
    clearInterval(this.poll)
    this.heartbeat = undefined
    this.poll = undefined
  }
}

function sameState (a: QueueState | undefined, b: QueueState): boolean {
  return a !== undefined && a.position === b.position && a.waiting === b.waiting &&
    a.estimatedGrantAt?.getTime() === b.estimatedGrantAt?.getTime()
}

function shuttingDown (): PoolError {
  return new PoolError('unavailable', 'This node is shutting down; nothing was changed. Try again (another node, or this one once it is back).', { retryAfterSeconds: 1 })
}
