/**
 * Out-of-order grants of the wait case: pairs (X, Y) where X had its first `queued` event
 * before Y's allocate was sent, yet Y's lease was granted before X's. First come first served
 * says X, queued before Y existed, goes first. X that got no lease (timed out) is left out.
 * Grant order is lease_id order: a pool's turns are one at a time and number their grants in
 * queue order. (Not started_at: a waiter's lease starts when its token freed, and one turn
 * may hand the first waiter the least-used token, which freed after another's.)
 */
export interface Grant {
  /** client clock (ms): the allocate request was sent */
  sentAt: number
  /** client clock (ms): its first `queued` event arrived; undefined when it never queued */
  queuedAt?: number
  /** the lease's id: the order of grants */
  leaseId: number
}

/** Counts the pairs in O(n log n): a sweep over send times with a Fenwick tree over lease ids. */
export function outOfOrder (grants: Grant[]): number {
  const queued = grants.filter((g) => g.queuedAt !== undefined).sort((a, b) => a.queuedAt! - b.queuedAt!)
  const ids = [...new Set(queued.map((g) => g.leaseId))].sort((a, b) => a - b)
  const tree = new Array<number>(ids.length + 1).fill(0)
  const rank = (id: number) => {
    // number of distinct queued lease ids ≤ id
    let lo = 0
    let hi = ids.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (ids[mid]! <= id) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const add = (i: number) => { for (; i <= ids.length; i += i & -i) tree[i]!++ }
  const sum = (i: number) => { let s = 0; for (; i > 0; i -= i & -i) s += tree[i]!; return s }
  let inserted = 0
  let next = 0
  let pairs = 0
  for (const y of [...grants].sort((a, b) => a.sentAt - b.sentAt)) {
    while (next < queued.length && queued[next]!.queuedAt! < y.sentAt) {
      add(rank(queued[next]!.leaseId))
      inserted++
      next++
    }
    // X already queued whose lease was granted after Y's
    pairs += inserted - sum(rank(y.leaseId))
  }
  return pairs
}
