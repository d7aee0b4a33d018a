import type { Id } from '../../domain/ids.js'
import type { PoolSettings, TokenStatus, TokenView } from '../../domain/types.js'
import { Deadlines } from './deadlines.js'

/** A token's row as the read model copies it; times are epoch ms (fractional: the database keeps µs). */
export interface TokenRow {
  id: Id
  pool: string
  position: number
  label: string | null
  retired: boolean
  disabled: boolean
  disabled_reason: string | null
  cooling_until: number | null
  lease_id: number | null
  user_id: Id | null
  started_at: number | null
  expires_at: number | null
  renewable_until: number | null
  usage_count: number
  counted_window: number | null
}

/** A pool's row: its settings and where its windows start. */
export interface PoolRow extends PoolSettings {
  name: string
  window_started_at: number
}

/** What a token is at a moment: a status, or not visible at all (retired, its last lease over). */
type Class = TokenStatus | 'hidden'

/**
 * A token in the model: its row plus what the pool's counters last counted it as. A class,
 * so that a million of them share one shape with every field in the object itself.
 */
export class ModelToken implements TokenRow {
  id: Id
  pool: string
  position: number
  label: string | null
  retired: boolean
  disabled: boolean
  disabled_reason: string | null
  cooling_until: number | null
  lease_id: number | null
  user_id: Id | null
  started_at: number | null
  expires_at: number | null
  renewable_until: number | null
  usage_count: number
  counted_window: number | null
  cls: Class = 'hidden'
  /** its count in the current window (its bucket) */
  count = 0
  /** bumped at every change, so that a deadline queued for an older row is ignored */
  stamp = 0

  constructor (r: TokenRow, pool: string) {
    this.id = r.id
    this.pool = pool
    this.position = r.position
    this.label = r.label
    this.retired = r.retired
    this.disabled = r.disabled
    this.disabled_reason = r.disabled_reason
    this.cooling_until = r.cooling_until
    this.lease_id = r.lease_id
    this.user_id = r.user_id
    this.started_at = r.started_at
    this.expires_at = r.expires_at
    this.renewable_until = r.renewable_until
    this.usage_count = r.usage_count
    this.counted_window = r.counted_window
  }

  /** Takes a newer row of the same token. */
  update (r: TokenRow): void {
    this.label = r.label
    this.retired = r.retired
    this.disabled = r.disabled
    this.disabled_reason = r.disabled_reason
    this.cooling_until = r.cooling_until
    this.lease_id = r.lease_id
    this.user_id = r.user_id
    this.started_at = r.started_at
    this.expires_at = r.expires_at
    this.renewable_until = r.renewable_until
    this.usage_count = r.usage_count
    this.counted_window = r.counted_window
    this.stamp++
  }
}

export interface PoolFigures {
  total: number
  active: number
  available: number
  cooling: number
  disabled: number
  windowStartedAt: number
  windowResetsAt: number
}

export interface UsageFigures {
  allocationsInWindow: number
  min: number
  max: number
  mean: number
  leastUsedCount: number
  leastUsed: ModelToken[]
}

/**
 * One pool's tokens in memory, with counters kept up to date as rows change and as time
 * passes: the status counts (a deadline queue moves a token from active or cooling to
 * available at its deadline, whoever reads) and the usage counts of the current window
 * (one bucket per count). Reads of any pool size cost what they return, not a scan.
 */
export class PoolState {
  /** every token read, in creation order (position) */
  private tokens: ModelToken[] = []
  private readonly classes = new Map<Class, number>()
  private readonly buckets = new Map<number, Set<ModelToken>>()
  private readonly deadlines = new Deadlines<ModelToken>()
  /** the model's time: the database's now() of the last read of it */
  private now = 0
  private windowIndex = Number.NaN
  /** changes whenever a count or the least-used list may have changed */
  private version = 0
  private leastUsedCache: { version: number, limit: number, tokens: ModelToken[] } | undefined

  constructor (readonly settings: PoolRow, now: number) {
    this.now = now
    this.windowIndex = this.indexAt(now)
  }

  /** Adds tokens read from the database, a page at a time, in creation order. */
  append (rows: TokenRow[]): void {
    for (const r of rows) {
      const t = new ModelToken(r, this.name)
      if ((this.tokens.at(-1)?.position ?? -Infinity) < t.position) this.tokens.push(t)
      else this.tokens.splice(this.indexAfter(t.position), 0, t)
      this.enter(t)
    }
  }

  get name (): string {
    return this.settings.name
  }

  all (): readonly ModelToken[] {
    return this.tokens
  }

  /** Moves the pool's clock to `now`: deadlines that passed take effect, a new window empties the counts. */
  advance (now: number): void {
    if (now <= this.now) return
    this.now = now
    const index = this.indexAt(now)
    if (index !== this.windowIndex) {
      this.windowIndex = index
      this.buckets.clear()
      for (const t of this.tokens) {
        if (t.cls === 'hidden') continue
        t.count = this.countOf(t)
        this.bucket(t.count).add(t)
      }
      this.version++
    }
    for (const [t, stamp] of this.deadlines.due(now)) {
      if (t.stamp === stamp) this.reclassify(t)
    }
  }

  /** A token's row as read from the database now (same pool). */
  put (token: ModelToken | undefined, row: TokenRow): ModelToken {
    if (token === undefined) {
      const t = new ModelToken(row, this.name)
      const at = this.indexAfter(row.position)
      this.tokens.splice(at, 0, t)
      this.enter(t)
      return t
    }
    this.leave(token)
    token.update(row)
    this.enter(token)
    return token
  }

  view (t: ModelToken): TokenView | undefined {
    if (t.cls === 'hidden') return undefined
    const active = t.cls === 'active'
    return {
      id: t.id,
      pool: t.pool,
      label: t.label,
      status: t.cls,
      usageCount: t.count,
      coolingUntil: t.cooling_until !== null && t.cooling_until > this.now ? new Date(t.cooling_until) : null,
      disabledReason: t.disabled_reason,
      activeUsage: active
        ? { leaseId: t.lease_id!, userId: t.user_id!, startedAt: new Date(t.started_at!), expiresAt: new Date(t.expires_at!) }
        : null,
    }
  }

  /** Up to `limit` visible tokens after position `after`, in order, of one status or all. */
  page (status: TokenStatus | undefined, after: number | undefined, limit: number): ModelToken[] {
    const out: ModelToken[] = []
    for (let i = after === undefined ? 0 : this.indexAfter(after); i < this.tokens.length && out.length < limit; i++) {
      const t = this.tokens[i]!
      if (t.cls !== 'hidden' && (status === undefined || t.cls === status)) out.push(t)
    }
    return out
  }

  figures (): PoolFigures {
    const n = (c: Class) => this.classes.get(c) ?? 0
    const length = this.settings.usage_window_hours * 3_600_000
    const windowStartedAt = this.settings.window_started_at + Math.max(0, this.windowIndex) * length
    return {
      total: n('active') + n('available') + n('cooling') + n('disabled'),
      active: n('active'),
      available: n('available'),
      cooling: n('cooling'),
      disabled: n('disabled'),
      windowStartedAt,
      windowResetsAt: windowStartedAt + length,
    }
  }

  /**
   * Whether the pool surely holds more or fewer live tokens than its size: a resize was cut
   * short. (Retired tokens whose lease still runs count as active, so a surplus is sure only
   * beyond them.)
   */
  needsProvisioning (): boolean {
    const f = this.figures()
    return f.total < this.settings.size || f.total - f.active > this.settings.size
  }

  /** The window's usage figures; the least-used list in token order, at most `limit`. */
  usage (limit: number): UsageFigures {
    let min = Infinity
    let max = -Infinity
    let sum = 0
    let total = 0
    for (const [count, set] of this.buckets) {
      min = Math.min(min, count)
      max = Math.max(max, count)
      sum += count * set.size
      total += set.size
    }
    if (total === 0) return { allocationsInWindow: 0, min: 0, max: 0, mean: 0, leastUsedCount: 0, leastUsed: [] }
    const least = this.buckets.get(min)!
    return {
      allocationsInWindow: sum,
      min,
      max,
      mean: sum / total,
      leastUsedCount: least.size,
      leastUsed: limit > 0 ? this.leastUsed(least, min, total, limit) : [],
    }
  }

  private leastUsed (least: Set<ModelToken>, min: number, total: number, limit: number): ModelToken[] {
    const cached = this.leastUsedCache
    if (cached !== undefined && cached.version === this.version && cached.limit === limit) return cached.tokens
    let tokens: ModelToken[]
    // Many tokens at the minimum: the first `limit` of them come soon in token order.
    // Few: sorting them costs less than walking the pool.
    if (least.size * 32 >= total) {
      tokens = []
      for (const t of this.tokens) {
        if (t.cls !== 'hidden' && t.count === min) tokens.push(t)
        if (tokens.length === limit) break
      }
    } else {
      tokens = [...least].sort((a, b) => a.position - b.position).slice(0, limit)
    }
    this.leastUsedCache = { version: this.version, limit, tokens }
    return tokens
  }

  /** Counts a token in, as it is now, and queues its next deadline. */
  private enter (t: ModelToken): void {
    t.cls = classify(t, this.now)
    this.classes.set(t.cls, (this.classes.get(t.cls) ?? 0) + 1)
    if (t.cls !== 'hidden') {
      t.count = this.countOf(t)
      this.bucket(t.count).add(t)
    }
    this.schedule(t)
    this.version++
  }

  private leave (t: ModelToken): void {
    this.classes.set(t.cls, this.classes.get(t.cls)! - 1)
    if (t.cls !== 'hidden') this.unbucket(t)
    this.version++
  }

  private reclassify (t: ModelToken): void {
    if (classify(t, this.now) === t.cls) {
      this.schedule(t)
      return
    }
    this.leave(t)
    this.enter(t)
  }

  private schedule (t: ModelToken): void {
    const next = [t.cooling_until, t.expires_at].filter((d): d is number => d !== null && d > this.now)
    if (next.length > 0) this.deadlines.add(Math.min(...next), t, t.stamp)
  }

  private bucket (count: number): Set<ModelToken> {
    let set = this.buckets.get(count)
    if (set === undefined) {
      set = new Set()
      this.buckets.set(count, set)
    }
    return set
  }

  private unbucket (t: ModelToken): void {
    const set = this.buckets.get(t.count)
    set?.delete(t)
    if (set?.size === 0) this.buckets.delete(t.count)
  }

  /** Rule 5: a count stored for an older window is 0. */
  private countOf (t: TokenRow): number {
    if (t.counted_window === null) return 0
    const length = this.settings.usage_window_hours * 3_600_000
    const start = this.settings.window_started_at + this.windowIndex * length
    // The database stores the window's start (computed in µs) and counts it only if equal:
    // a count of a window of another length (the setting changed) is 0 too.
    return Math.abs(t.counted_window - start) < 0.5 ? t.usage_count : 0
  }

  private indexAt (now: number): number {
    const length = this.settings.usage_window_hours * 3_600_000
    return Math.max(0, Math.floor((now - this.settings.window_started_at) / length))
  }

  /** The index of the first token with a position after `position`. */
  private indexAfter (position: number): number {
    let lo = 0
    let hi = this.tokens.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.tokens[mid]!.position <= position) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** A token's status at `now`, as the database's tp_status says it (and whether it is visible, rule 1). */
function classify (t: TokenRow, now: number): Class {
  const leased = t.expires_at !== null && t.expires_at > now
  if (t.retired && !leased) return 'hidden'
  if (t.disabled) return 'disabled'
  if (t.cooling_until !== null && t.cooling_until > now) return 'cooling'
  return leased ? 'active' : 'available'
}
