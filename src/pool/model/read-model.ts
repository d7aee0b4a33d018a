import { randomUUID } from 'node:crypto'
import type { Db } from '../../store/db.js'
import type { Position } from '../../store/events.js'
import * as store from '../../store/read-model.js'
import { PoolState, type ModelToken, type PoolRow, type TokenRow } from './pool-state.js'

// Events read per statement while catching up.
const EVENTS_PER_READ = 5_000
// Tokens read per statement when a pool is (re)loaded. Small enough that each statement, and
// the client's wait for its rows, stays far inside a strict statement timeout on a starved
// machine (at 20,000 a 1 s deployment's load of 1,000,000 tokens failed once in CI); the
// whole load takes as long (about 6 s for 1,000,000 here either way).
const TOKENS_PER_READ = 5_000
// A node that could not follow the log for this long reads everything again: the log
// keeps at least an hour, so the events it missed are still there well within it.
const REBUILD_AFTER_MS = 10 * 60_000
// How often the model follows the log when nobody reads (so the next read has little to do).
const FOLLOW_EVERY_MS = 1000

/**
 * This node's copy of every pool's tokens, fed by the event log (the equivalent of the
 * original design's ETS table). A read first catches the copy up with the log in one
 * small statement shared by every read waiting at that moment (Raft's ReadIndex), then
 * answers from memory at that statement's now(): it sees every change acknowledged
 * anywhere before it began, and expiries and cooldown ends exactly (RELIABILITY.md, "Why
 * reads from memory are current").
 */
export class ReadModel {
  private readonly pools = new Map<string, PoolState>()
  private readonly byId = new Map<string, ModelToken>()
  /** every event at or before it has been applied */
  private cursor: Position = { xid: '0', id: 0 }
  /** events after the cursor applied already (their transactions were not settled): id → xid */
  private readonly applied = new Map<number, bigint>()
  private waiting: Record<string, number> = {}
  private now = 0
  private builtAt: number | undefined
  /** this copy's mark in the database (read_model_marks), gone after a crash */
  private readonly node = randomUUID()
  private lastCaughtUp = 0
  /** counts catch-ups: reads answered at one generation see the same copy at the same now */
  generation = 0
  private running: Promise<void> | undefined
  private queued: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly db: Db) {}

  /** Reads everything, then follows the log in the background. */
  async start (): Promise<void> {
    await this.catchUp()
    this.timer = setInterval(() => { this.catchUp().catch(() => {}) }, FOLLOW_EVERY_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /**
   * Brings the copy up to every change committed before this call. Calls that come while
   * a catch-up runs share the next one: its snapshot is taken after they began. If the
   * running one fails they fail with it, rather than wait out a second statement timeout.
   */
  async catchUp (): Promise<void> {
    if (this.running === undefined) {
      this.running = this.step().finally(() => { this.running = undefined })
      return await this.running
    }
    this.queued ??= this.running.then(async () => {
      this.queued = undefined
      await this.catchUp()
    }, (err: unknown) => {
      this.queued = undefined
      throw err
    })
    return await this.queued
  }

  allPools (): PoolState[] {
    return [...this.pools.values()]
  }

  pool (name: string): PoolState | undefined {
    return this.pools.get(name)
  }

  token (id: string): { token: ModelToken, pool: PoolState } | undefined {
    const token = this.byId.get(id)
    const pool = token === undefined ? undefined : this.pools.get(token.pool)
    return token === undefined || pool === undefined ? undefined : { token, pool }
  }

  waitingIn (pool: string): number {
    return this.waiting[pool] ?? 0
  }

  private async step (): Promise<void> {
    if (this.builtAt === undefined || performance.now() - this.lastCaughtUp > REBUILD_AFTER_MS) await this.build()
    for (;;) {
      const changes = await store.changesAfter(this.db, this.node, this.cursor, [...this.applied.keys()], EVENTS_PER_READ)
      // After a crash, PostgreSQL gives out again the transaction ids that never reached its
      // log: events could then commit below the cursor. Crash recovery also empties the
      // unlogged table that holds this node's mark: a database that crashed is read anew.
      if (!changes.marked) {
        await this.build()
        continue
      }
      await this.apply(changes)
      if (changes.events.length < EVENTS_PER_READ) break
    }
    this.lastCaughtUp = performance.now()
    this.generation++
  }

  /** Everything read again; the log is followed from before the first read. */
  private async build (): Promise<void> {
    const { horizon: xmin, at_ms: now } = await store.horizon(this.db, this.node)
    const states = await Promise.all((await store.poolRows(this.db)).map(async (row) => await this.read(row, now)))
    // Everything of a transaction below the horizon is in the rows just read; the rest is
    // read again from the log (reading a token again is harmless: it is its current row).
    this.cursor = { xid: xmin, id: 0 }
    this.applied.clear()
    this.pools.clear()
    this.byId.clear()
    for (const state of states) this.swap(state.name, state)
    this.now = Math.max(this.now, now)
    this.builtAt = performance.now()
  }

  private async apply (c: store.Changes): Promise<void> {
    const horizon = BigInt(c.horizon)
    const reload = new Set<string>()
    for (const e of c.events) {
      const xid = BigInt(e.xid)
      if (xid < horizon) this.cursor = { xid: e.xid, id: e.id }
      else this.applied.set(e.id, xid)
      if (e.token_id === null) reload.add(e.pool)
    }
    // The log below the horizon is complete: nothing new can appear there.
    if (c.events.length < EVENTS_PER_READ && BigInt(this.cursor.xid) < horizon) this.cursor = { xid: c.horizon, id: 0 }
    for (const [id, xid] of this.applied) if (xid < BigInt(this.cursor.xid)) this.applied.delete(id)

    this.now = Math.max(this.now, c.at_ms)
    for (const state of this.pools.values()) state.advance(this.now)
    for (const row of c.tokens) this.put(row)
    try {
      for (const name of reload) await this.load(name)
    } catch (err) {
      // The cursor is past the events that asked for these reloads: read everything again.
      this.builtAt = undefined
      throw err
    }
    this.waiting = c.waiting
  }

  private put (row: TokenRow): void {
    const known = this.byId.get(row.id)
    const state = this.pools.get(row.pool)
    if (state === undefined) return
    this.byId.set(row.id, state.put(known, row))
  }

  /** Reads one pool again (its settings and every token): it was created, changed, resized or deleted. */
  private async load (name: string): Promise<void> {
    const [settings] = await store.poolRows(this.db, name)
    this.swap(name, settings === undefined ? undefined : await this.read(settings, this.now))
  }

  private async read (settings: PoolRow, now: number): Promise<PoolState> {
    const state = new PoolState(settings, now)
    for (let after = 0; ;) {
      const page = await store.tokenRows(this.db, settings.name, after, TOKENS_PER_READ)
      state.append(page)
      if (page.length < TOKENS_PER_READ) return state
      after = page.at(-1)!.position
    }
  }

  /** Puts a pool's new state in place in one step, so that no read sees half of it. */
  private swap (name: string, state: PoolState | undefined): void {
    for (const t of this.pools.get(name)?.all() ?? []) this.byId.delete(t.id)
    this.pools.delete(name)
    if (state === undefined) return
    state.advance(this.now)
    for (const t of state.all()) this.byId.set(t.id, t)
    this.pools.set(name, state)
  }
}
