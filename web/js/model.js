// The pool as the page knows it: a snapshot from GET /api/tokens, moved forward by
// events, and by the clock for expiry. Pure: no DOM, no fetch, so it is easy to test.
//
// Events are applied idempotently, keyed by (token, holder, started_at): a replayed
// or late event never undoes a newer lease. That lets the page re-apply the events
// that arrived while a re-sync was in flight on top of the fresh snapshot.

/**
 * @typedef {object} Token
 * @property {string} id
 * @property {number} n          1-based position in the pool's creation order
 * @property {'active'|'available'} status
 * @property {string|null} user
 * @property {number|null} startedAt  ms since the epoch
 * @property {number|null} expiresAt  ms since the epoch
 * @property {number} usage      allocations in the current window
 */

export class PoolModel {
  constructor () {
    /** @type {Token[]} */
    this.tokens = []
    /** @type {Map<string, Token>} */
    this.byId = new Map()
    this.windowStartedAt = 0
    this.windowResetsAt = 0
    this.allocationsInWindow = 0
    /** bumped when the set or order of tokens changes (the grid must be rebuilt) */
    this.layoutVersion = 0
  }

  /** Replaces the state with a snapshot: the `data` and `meta` of GET /api/tokens. */
  load (list, meta) {
    const sameLayout = list.length === this.tokens.length && list.every((t, i) => this.tokens[i].id === t.id)
    const before = this.byId
    this.tokens = list.map((t, i) => ({
      id: t.id,
      n: i + 1,
      status: t.status,
      user: t.current_user_id,
      // A free token keeps the start of the last lease seen, so a replayed event of that lease stays ignored.
      startedAt: t.started_at === null ? (before.get(t.id)?.startedAt ?? null) : Date.parse(t.started_at),
      expiresAt: t.expires_at === null ? null : Date.parse(t.expires_at),
      usage: t.usage_count,
    }))
    this.byId = new Map(this.tokens.map((t) => [t.id, t]))
    if (meta) {
      this.windowStartedAt = Date.parse(meta.window_started_at)
      this.windowResetsAt = Date.parse(meta.window_resets_at)
    }
    if (!sameLayout) this.layoutVersion++
  }

  /** GET /api/stats data: only what the token list does not carry. */
  loadStats (stats) {
    this.allocationsInWindow = stats.allocations_in_window
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
    const startedAt = Date.parse(lease.started_at)
    if (t.startedAt !== null && t.startedAt >= startedAt) return null
    t.status = 'active'
    t.user = lease.user_id
    t.startedAt = startedAt
    t.expiresAt = Date.parse(lease.expires_at)
    t.usage++
    this.allocationsInWindow++
    return t
  }

  /** A `released` or `cleared` event, or a release response: ends the lease only if it is the one shown. */
  applyEnded (ended) {
    const t = this.byId.get(ended.token_id)
    if (t === undefined) return undefined
    if (t.status !== 'active' || t.user !== ended.user_id || t.startedAt !== Date.parse(ended.started_at)) return null
    return this.free(t)
  }

  /** Leases whose expires_at has passed end by themselves (rule 3): no event is needed. */
  expire (now) {
    const changed = []
    for (const t of this.tokens) if (t.status === 'active' && t.expiresAt !== null && t.expiresAt <= now) changed.push(this.free(t))
    return changed
  }

  free (t) {
    t.status = 'available'
    t.user = null
    t.expiresAt = null
    // startedAt stays: it orders later events for this token.
    return t
  }

  /** Counts and the usage-count spread, for the counters, the chart and the least-used mark. */
  summary () {
    let active = 0
    let min = Infinity
    let max = -Infinity
    for (const t of this.tokens) {
      if (t.status === 'active') active++
      if (t.usage < min) min = t.usage
      if (t.usage > max) max = t.usage
    }
    if (this.tokens.length === 0) min = max = 0
    return { total: this.tokens.length, active, available: this.tokens.length - active, min, max }
  }

  /** How many tokens have each usage count: [count, tokens] pairs, ascending. */
  distribution () {
    const byCount = new Map()
    for (const t of this.tokens) byCount.set(t.usage, (byCount.get(t.usage) ?? 0) + 1)
    return [...byCount.entries()].sort((a, b) => a[0] - b[0])
  }
}
