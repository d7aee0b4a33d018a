import { TokenPoolError } from './errors.js'
import type { CallOptions } from './options.js'
import type { Lease } from './types.js'

export interface KeepAliveOptions {
  /** the holder; default the lease's user_id */
  userId?: string
  /** ms between renewals; default a third of the TTL */
  intervalMs?: number
  /** the pool's lease_ttl_seconds; default expires_at − now of the lease given */
  ttlSeconds?: number
  /**
   * The lease can't be kept any more (not_holder: it ended; renewal_limit: it reached
   * renewable_until; or another refusal that trying again won't change). Renewals stop.
   */
  onLost?: (err: TokenPoolError) => void
  /** after each renewal, with the renewed lease */
  onRenew?: (lease: Lease) => void
  /** a renewal that failed for a passing reason (unreachable, 429, 503): the next one tries again */
  onError?: (err: Error) => void
}

export interface KeepAlive {
  /** stops renewing (the lease is not released: release it, or let it expire) */
  stop: () => void
  /** the lease as the last renewal answered it */
  readonly lease: Lease
  /** true once stopped, by stop() or because the lease was lost */
  readonly stopped: boolean
}

// The fastest keepAlive renews: a TTL of a fraction of a second must not turn into a busy loop.
const MIN_KEEPALIVE_MS = 50

/** TokenPoolScope.keepAlive: renews the lease with `renew` (the scope's) on a timer until stopped or lost. */
export function keepLeaseAlive (renew: (tokenId: string, userId: string, options: CallOptions) => Promise<Lease>, lease: Lease, options: KeepAliveOptions): KeepAlive {
  const userId = options.userId ?? lease.user_id
  // The service hides other users' ids; a lease of one's own always shows it.
  if (userId === null) throw new TypeError('keepAlive needs the holder\'s id: pass options.userId')
  const measured = Date.parse(lease.expires_at) - Date.now()
  // expires_at − now, unless this machine's clock and the service's disagree by more than
  // the rounding of expires_in_seconds: then the service's own count.
  const reported = lease.expires_in_seconds * 1000
  const ttlMs = options.ttlSeconds !== undefined
    ? options.ttlSeconds * 1000
    : (Number.isFinite(measured) && Math.abs(measured - reported) <= 1000 ? measured : reported)
  const intervalMs = Math.max(MIN_KEEPALIVE_MS, options.intervalMs ?? ttlMs / 3)
  const abort = new AbortController()
  let current = lease
  let stopped = false
  let timer: NodeJS.Timeout | undefined

  const stop = () => {
    if (stopped) return
    stopped = true
    clearTimeout(timer)
    abort.abort()
  }
  const schedule = () => {
    if (stopped) return
    // A callback that throws must not stop the renewals, nor vanish: it is reported as uncaught.
    timer = setTimeout(() => { tick().catch((err: unknown) => { queueMicrotask(() => { throw err }) }) }, intervalMs)
    timer.unref?.()
  }
  const tick = async () => {
    let renewed: Lease
    try {
      renewed = await renew(current.token_id, userId, { signal: abort.signal })
    } catch (err) {
      if (stopped) return
      if (err instanceof TokenPoolError && isFinal(err)) {
        stop()
        options.onLost?.(err)
      } else {
        schedule()
        options.onError?.(err as Error)
      }
      return
    }
    if (stopped) return
    current = renewed
    schedule()
    // The caller's callback failing is the caller's error, not an uncaught one that ends the process.
    try {
      options.onRenew?.(renewed)
    } catch (err) {
      options.onError?.(err as Error)
    }
  }

  schedule()
  return {
    stop,
    get lease () { return current },
    get stopped () { return stopped },
  }
}

// Refusals that trying again won't change: the lease is gone (or can't be extended).
const isFinal = (err: TokenPoolError) => err.status >= 400 && err.status < 500 && err.status !== 429 && err.status !== 408
