import type { Id } from '../domain/ids.js'
import type { Db } from '../store/db.js'
import * as store from '../store/events.js'
import type { PoolView, TokenStatus, TokenView } from '../domain/types.js'
import type { PoolEvent } from './context.js'

/**
 * A change made by any node, as the event stream carries it; id is its place in the
 * stream. `reset` tells a client that resumed from beyond the kept window that it
 * missed events it can't get any more.
 */
export type StreamEvent = (PoolEvent | { type: 'reset' }) & store.Position

export interface FeedOptions {
  /** ms between reads when no notification comes (the fallback if LISTEN is down) */
  pollIntervalMs?: number
}

type Listener = (event: StreamEvent) => void

const BATCH = 1000

/**
 * The changes of every node sharing the database, for this process: one LISTEN
 * connection and one reader, fanned out to every subscriber. A notification only
 * says "read now"; the events come from pool_events, so a lost notification or a
 * dropped listener costs latency (the poll), never an event.
 */
export class EventFeed {
  private readonly listeners = new Set<Listener>()
  private readonly pollIntervalMs: number
  /** the last event delivered; undefined while nobody listens, so nobody pays for reads */
  private cursor: store.Position | undefined
  private started: Promise<void> | undefined
  private unlisten: (() => Promise<void>) | undefined
  private schema: string | undefined
  private reading: Promise<void> | undefined
  private readAgain = false
  private timers: NodeJS.Timeout[] = []
  private closed = false

  constructor (private readonly db: Db, opts: FeedOptions = {}) {
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000
  }

  /**
   * Calls onEvent for each change from now on; with lastEventId, first for each
   * change after that one that is still kept. Returns the unsubscribe function.
   */
  async subscribe (onEvent: Listener, lastEventId?: number): Promise<() => void> {
    if (this.closed) throw new Error('the event feed is closed')
    // Listen first and hold live events back until the replay is done, so that nothing
    // falls between the replay's last event and the first live one; `last` drops repeats.
    const held: StreamEvent[] = []
    let live = false
    let last: store.Position = store.START
    const deliver = (e: StreamEvent) => {
      if (!after(e, last)) return
      last = { xid: e.xid, id: e.id }
      onEvent(e)
    }
    const listener: Listener = (e) => { if (live) deliver(e); else held.push(e) }
    this.listeners.add(listener)
    const unsubscribe = () => { this.listeners.delete(listener) }
    try {
      await this.start()
      this.cursor ??= await store.head(this.db)
      if (lastEventId === undefined) {
        last = await store.head(this.db)
      } else {
        const resume = await store.resumeAfter(this.db, lastEventId)
        last = resume.from
        if (resume.reset) onEvent({ type: 'reset', ...resume.from })
      }
      for (;;) {
        const rows = await store.readAfter(this.db, last, BATCH)
        for (const row of rows) deliver(toEvent(row))
        if (rows.length < BATCH) break
      }
      for (const e of held) deliver(e)
      live = true
      return unsubscribe
    } catch (err) {
      unsubscribe()
      throw err
    }
  }

  /** Stops listening and reading. Subscribers get nothing more. */
  async close (): Promise<void> {
    this.closed = true
    this.listeners.clear()
    for (const t of this.timers) clearInterval(t)
    await this.started?.catch(() => {})
    await this.reading
    await this.unlisten?.()
  }

  private async start (): Promise<void> {
    this.started ??= (async () => {
      this.schema = await store.currentSchema(this.db)
      await this.listen()
      this.timers.push(setInterval(() => { this.wake() }, this.pollIntervalMs).unref())
    })()
    try {
      await this.started
    } catch (err) {
      this.started = undefined
      throw err
    }
  }

  private async listen (): Promise<void> {
    try {
      this.unlisten = await this.db.listen(store.EVENTS_CHANNEL, (schema) => {
        if (schema === this.schema) this.wake()
      }, () => { this.wake() })
    } catch {
      // The database is away: the poll carries on alone and we try again later.
      const retry = setTimeout(() => { if (!this.closed) this.listen().catch(() => {}) }, this.pollIntervalMs * 5)
      retry.unref()
      this.timers.push(retry)
    }
  }

  /** Reads what is new; a wake-up during a read makes one more read after it. */
  private wake (): void {
    if (this.closed || this.cursor === undefined) return
    if (this.listeners.size === 0) {
      // Nobody to tell: stop reading; the next subscriber starts from the head again.
      this.cursor = undefined
      return
    }
    if (this.reading !== undefined) {
      this.readAgain = true
      return
    }
    this.reading = this.drain().catch(() => {}).finally(() => {
      this.reading = undefined
      if (this.readAgain) {
        this.readAgain = false
        this.wake()
      }
    })
  }

  private async drain (): Promise<void> {
    for (;;) {
      const from = this.cursor
      if (from === undefined || this.closed) return
      const rows = await store.readAfter(this.db, from, BATCH)
      for (const row of rows) {
        const event = toEvent(row)
        this.cursor = { xid: row.xid, id: row.id }
        for (const listener of this.listeners) listener(event)
      }
      if (rows.length < BATCH) return
    }
  }
}

/** Whether e comes after p in stream order, (xid, id). */
function after (e: store.Position, p: store.Position): boolean {
  const ex = BigInt(e.xid)
  const px = BigInt(p.xid)
  return ex > px || (ex === px && e.id > p.id)
}

function toEvent (row: store.DbEvent): StreamEvent {
  const base = { id: row.id, xid: row.xid }
  switch (row.type) {
    case 'allocated':
    case 'renewed':
      return {
        ...base,
        type: row.type,
        lease: {
          pool: row.pool,
          tokenId: row.token_id!,
          userId: row.user_id!,
          leaseId: row.lease_id!,
          startedAt: row.started_at!,
          expiresAt: row.expires_at!,
          renewableUntil: row.renewable_until ?? row.expires_at!,
          // What the allocate or renew call answered: the seconds left as it was made.
          expiresInSeconds: Math.floor((row.expires_at!.getTime() - (row.renewed_at ?? row.started_at!).getTime()) / 1000),
          evictedUserId: row.evicted_user_id,
          isNew: row.type === 'allocated',
        },
      }
    case 'released':
    case 'cleared':
      return {
        ...base,
        type: row.type,
        lease: {
          pool: row.pool,
          leaseId: row.lease_id!,
          tokenId: row.token_id!,
          userId: row.user_id!,
          startedAt: row.started_at!,
          releasedAt: row.released_at!,
          releaseReason: row.release_reason!,
        },
      }
    case 'pool_changed':
      return { ...base, type: row.type, pool: row.body as unknown as PoolView }
    default:
      return { ...base, type: row.type, token: tokenFromJson(row.body ?? {}) }
  }
}

const dateOrNull = (v: unknown) => (typeof v === 'string' ? new Date(v) : null)

/** A token view the database wrote as JSON (tp_token_json). */
function tokenFromJson (b: Record<string, unknown>): TokenView {
  const status = b.status as TokenStatus
  return {
    id: b.id as Id,
    pool: b.pool as string,
    label: (b.label as string | null) ?? null,
    status,
    usageCount: Number(b.usage_count ?? 0),
    coolingUntil: dateOrNull(b.cooling_until),
    disabledReason: (b.disabled_reason as string | null) ?? null,
    activeUsage: status === 'active'
      ? { leaseId: Number(b.lease_id), userId: b.current_user_id as Id, startedAt: new Date(b.started_at as string), expiresAt: new Date(b.expires_at as string) }
      : null,
  }
}
