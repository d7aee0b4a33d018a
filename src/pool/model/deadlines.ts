/**
 * Deadlines in time order (a binary min-heap): what falls due is taken out when the
 * clock passes it. An entry carries the stamp its item had when it was queued, so that
 * the caller can tell a deadline that still holds from one a later change replaced.
 */
export class Deadlines<T> {
  private readonly heap: Array<{ at: number, item: T, stamp: number }> = []

  add (at: number, item: T, stamp: number): void {
    const h = this.heap
    h.push({ at, item, stamp })
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (h[parent]!.at <= h[i]!.at) break
      ;[h[parent], h[i]] = [h[i]!, h[parent]!]
      i = parent
    }
  }

  /** Takes out every entry due at or before `now`, earliest first. */
  * due (now: number): Generator<[T, number]> {
    const h = this.heap
    while (h.length > 0 && h[0]!.at <= now) {
      const top = h[0]!
      const last = h.pop()!
      if (h.length > 0) {
        h[0] = last
        let i = 0
        for (;;) {
          const l = 2 * i + 1
          const r = l + 1
          let m = i
          if (l < h.length && h[l]!.at < h[m]!.at) m = l
          if (r < h.length && h[r]!.at < h[m]!.at) m = r
          if (m === i) break
          ;[h[m], h[i]] = [h[i]!, h[m]!]
          i = m
        }
      }
      yield [top.item, top.stamp]
    }
  }
}
