// One pool as the page knows it: a snapshot from GET /api/pools/:pool/tokens, moved
// forward by events, and by the clock for lease expiry and cooldown ends. Pure: no DOM,
// no fetch, so it is easy to test.
//
// Lease events are applied idempotently, keyed by lease_id (one sequence for every pool,
// growing with every new lease): a replayed or late event never undoes a newer lease.
// That lets the page re-apply the events that arrived while a re-sync was in flight on
// top of the fresh snapshot. It also works when the server hides user ids (ADMIN_TOKEN).

/**
 * @typedef {object} Token
 * @property {string} id
 * @property {number} n          1-based position in the pool's creation order
 * @property {string|null} label
 * @property {'active'|'available'|'cooling'|'disabled'} status
 * @property {string|null} user       the holder's user id (null when hidden by the server)
 * @property {string|null} holder     the holder fingerprint the server sends when it hides ids
 * @property {number|null} leaseId    the active lease
 * @property {number} lastLease       the newest lease id seen for this token (orders late events)
 * @property {number|null} startedAt  ms since the epoch
 * @property {number|null} expiresAt  ms since the epoch
 * @property {number|null} coolingUntil  ms since the epoch
 * @property {string|null} disabledReason
 * @property {number} usage      allocations in the current window
 */

const ms = (iso) => (iso === null || iso === undefined ? null : Date.parse(iso))

export class PoolModel {
  constructor (name = 'default') {
    this.name = name
    /** @type {Token[]} */
    this.tokens = []
    /** @type {Map<string, Token>} */
    this.byId = new Map()
    this.windowStartedAt = 0
    this.windowResetsAt = 0
    this.allocationsInWindow = 0
    /** users waiting in the pool's queue (rule 12), as the server last said */
    this.waiting = 0
    /** bumped when the set or order of tokens changes (the grid must be rebuilt) */
    this.layoutVersion = 0
    /** bumped by every change of any token (a filtered view must be recomputed) */
    this.version = 0
    /** bumped by every load: the token objects were replaced */
    this.snapshot = 0
  }

  /** Replaces the state with a snapshot: the `data` and `meta` of GET /api/pools/:pool/tokens. */
  load (list, meta) {
    const sameLayout = list.length === this.tokens.length && list.every((t, i) => this.tokens[i].id === t.id)
    const before = this.byId
    this.tokens = list.map((t, i) => {
      const old = before.get(t.id)
      const leaseId = t.lease_id ?? null
      return {
        id: t.id,
        n: i + 1,
        label: t.label ?? null,
        status: t.status,
        user: t.current_user_id ?? null,
        holder: t.holder ?? null,
        leaseId,
        // A free token keeps the last lease seen, so a replayed event of that lease stays ignored.
        lastLease: Math.max(leaseId ?? 0, old?.lastLease ?? 0),
        startedAt: ms(t.started_at),
        expiresAt: ms(t.expires_at),
        coolingUntil: ms(t.cooling_until),
        disabledReason: t.disabled_reason ?? null,
        usage: t.usage_count,
      }
    })
    this.byId = new Map(this.tokens.map((t) => [t.id, t]))
    if (typeof meta?.waiting === 'number') this.waiting = meta.waiting
    if (meta?.window_started_at) {
      this.windowStartedAt = Date.parse(meta.window_started_at)
      this.windowResetsAt = Date.parse(meta.window_resets_at)
    }
    if (!sameLayout) this.layoutVersion++
    // The token objects are new: whoever holds the old ones must take these.
    this.snapshot++
    this.version++
  }

  /** GET /api/pools/:pool/stats data: only what the token list does not carry. */
  loadStats (stats) {
    this.allocationsInWindow = stats.allocations_in_window
    if (typeof stats.waiting === 'number') this.waiting = stats.waiting
    this.windowStartedAt = Date.parse(stats.window_started_at)
    this.windowResetsAt = Date.parse(stats.window_resets_at)
  }

  /**
   * An `allocated` event or an allocate response. Returns the token changed, null
   * when it was already known (or older than what is shown), undefined for an unknown token.
   */
  applyAllocated (lease) {
    const t = this.byId.get(lease.token_id)
    if (t === undefined) return undefined
    if (lease.lease_id <= t.lastLease) return null
    this.hold(t, lease)
    t.usage++
    this.allocationsInWindow++
    return t
  }

  /** A `renewed` event or a renew response: a later expires_at for the lease shown. */
  applyRenewed (lease) {
    const t = this.byId.get(lease.token_id)
    if (t === undefined) return undefined
    if (lease.lease_id < t.lastLease) return null
    if (lease.lease_id === t.lastLease) {
      const expiresAt = Date.parse(lease.expires_at)
      if (t.status !== 'active' || t.leaseId !== lease.lease_id || t.expiresAt >= expiresAt) return null
      t.expiresAt = expiresAt
    } else this.hold(t, lease) // its allocation was missed; the next re-sync brings its count
    this.version++
    return t
  }

  hold (t, lease) {
    t.status = 'active'
    t.user = lease.user_id ?? null
    t.holder = lease.holder ?? null
    t.leaseId = lease.lease_id
    t.lastLease = lease.lease_id
    t.startedAt = Date.parse(lease.started_at)
    t.expiresAt = Date.parse(lease.expires_at)
    t.coolingUntil = null
    t.disabledReason = null
    this.version++
  }

  /** A `released` or `cleared` event, or a release response: ends the lease only if it is the one shown. */
  applyEnded (ended) {
    const t = this.byId.get(ended.token_id)
    if (t === undefined) return undefined
    if (ended.lease_id > t.lastLease) {
      // A lease we never saw start has ended: whatever was shown before it is over too.
      t.lastLease = ended.lease_id
      return t.status === 'active' ? this.free(t) : null
    }
    if (t.status !== 'active' || t.leaseId !== ended.lease_id) return null
    return this.free(t)
  }

  /** A `cooling`, `disabled` or `enabled` event (the token, flat), or a token-health response. */
  applyToken (flat) {
    const t = this.byId.get(flat.id)
    if (t === undefined) return undefined
    const leaseId = flat.lease_id ?? flat.active_usage?.lease_id ?? null
    // An older view of a token that holds a newer lease now (an event replayed over a snapshot) changes nothing.
    if (t.status === 'active' && (flat.status === 'available' || flat.status === 'active') && (leaseId ?? 0) < t.leaseId) return null
    t.status = flat.status
    t.label = flat.label ?? null
    t.coolingUntil = ms(flat.cooling_until)
    t.disabledReason = flat.disabled_reason ?? null
    t.usage = flat.usage_count ?? t.usage
    if (flat.status === 'active') {
      const a = flat.active_usage
      t.leaseId = leaseId
      t.lastLease = Math.max(t.lastLease, leaseId ?? 0)
      t.user = flat.current_user_id ?? null
      t.holder = flat.holder ?? a?.holder ?? null
      t.startedAt = ms(flat.started_at ?? a?.started_at)
      t.expiresAt = ms(flat.expires_at ?? a?.expires_at)
    } else {
      t.leaseId = null
      t.user = null
      t.holder = null
      t.expiresAt = null
    }
    this.version++
    return t
  }

  /**
   * Leases end at their own expires_at, and cooldowns at their cooling_until, with or
   * without an event (rules: a token is free at that moment).
   */
  expire (now) {
    const changed = []
    for (const t of this.tokens) {
      if (t.status === 'active' && t.expiresAt !== null && t.expiresAt <= now) changed.push(this.free(t))
      else if (t.status === 'cooling' && t.coolingUntil !== null && t.coolingUntil <= now) {
        t.status = 'available'
        t.coolingUntil = null
        this.version++
        changed.push(t)
      }
    }
    return changed
  }

  free (t) {
    t.status = 'available'
    t.user = null
    t.holder = null
    t.leaseId = null
    t.expiresAt = null
    // startedAt and lastLease stay: they order later events for this token.
    this.version++
    return t
  }

  /**
   * Counts and the usage-count spread, for the counters, the chart and the least-used mark.
   * `markLeast` is false when the least used are most of the pool: marking them all says nothing.
   */
  summary () {
    let active = 0
    let cooling = 0
    let disabled = 0
    let min = Infinity
    let max = -Infinity
    let atMin = 0
    for (const t of this.tokens) {
      if (t.status === 'active') active++
      else if (t.status === 'cooling') cooling++
      else if (t.status === 'disabled') disabled++
      if (t.usage < min) {
        min = t.usage
        atMin = 0
      }
      if (t.usage === min) atMin++
      if (t.usage > max) max = t.usage
    }
    const total = this.tokens.length
    if (total === 0) min = max = 0
    return { total, active, available: total - active - cooling - disabled, cooling, disabled, min, max, leastCount: atMin, markLeast: total > 0 && atMin * 2 <= total }
  }

  /**
   * When a token of the pool is next due to free, ms since the epoch: the earliest
   * expires_at of the active leases and cooling_until of the cooling tokens still ahead of
   * `now`, or null when there is none (every token free or disabled). The first in the
   * queue is served by then, barring a renewal, a longer cooldown, a disable or a shrink.
   */
  nextFree (now) {
    let next = null
    for (const t of this.tokens) {
      const at = t.status === 'active' ? t.expiresAt : t.status === 'cooling' ? t.coolingUntil : null
      if (at !== null && at > now && (next === null || at < next)) next = at
    }
    return next
  }

  /** How many tokens have each usage count: [count, tokens] pairs, ascending. */
  distribution () {
    const byCount = new Map()
    for (const t of this.tokens) byCount.set(t.usage, (byCount.get(t.usage) ?? 0) + 1)
    return [...byCount.entries()].sort((a, b) => a[0] - b[0])
  }

  /** The tokens a filter keeps, in pool order (all of them when the filter is empty). */
  view (filter) {
    if (isEmpty(filter)) return this.tokens
    return this.tokens.filter((t) => matches(t, filter))
  }
}

/** @typedef {{ text?: string, leasedOnly?: boolean }} Filter */

export const isEmpty = (filter) => !filter || (!filter.leasedOnly && !(filter.text ?? '').trim())

/**
 * Does a token pass the filter? `text` is matched, case-insensitively, against the token's
 * id, its label, its holder's user id (or fingerprint) and its number ("#12" or "12").
 */
export function matches (t, filter) {
  if (filter.leasedOnly && t.status !== 'active') return false
  const q = (filter.text ?? '').trim().toLowerCase()
  if (q === '') return true
  if (t.id.includes(q)) return true
  if (t.user !== null && t.user.includes(q)) return true
  if (t.holder !== null && t.holder.includes(q)) return true
  if (t.label !== null && t.label.toLowerCase().includes(q)) return true
  const n = q.startsWith('#') ? q.slice(1) : q
  return /^\d+$/.test(n) && Number(n) === t.n
}
