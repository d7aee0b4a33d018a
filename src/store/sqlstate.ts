import { PoolError } from '../domain/errors.js'

/** Races that a retry settles: deadlock, serialization failure, and our constraints firing under a race. */
const RETRYABLE = new Set(['40P01', '40001', '23505', '23P01'])

// Class 08 (connection), 57P0x (shutdown), 53 (resources) and client-side network failures.
const UNAVAILABLE = /^(08|57P0|53)/
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'])
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|connection timeout|Client has encountered a connection error|Cannot use a pool after calling end|PGlite is closed|canceling statement due to statement timeout|Query read timeout|Connection terminated unexpectedly|terminating connection/i

export function isRetryable (err: unknown): boolean {
  return RETRYABLE.has(codeOf(err) ?? '')
}

/** Turns a database failure into the contract's error: 503 when the database can't be reached. */
export function translateDbError (err: unknown): PoolError | unknown {
  if (err instanceof PoolError) return err
  const code = codeOf(err)
  const message = err instanceof Error ? err.message : ''
  if ((code !== undefined && (UNAVAILABLE.test(code) || NETWORK.has(code) || code === '57014')) || UNAVAILABLE_MESSAGES.test(message)) {
    return new PoolError('unavailable', 'The database is unavailable; nothing was changed. Try again shortly.', { cause: err, retryAfterSeconds: 1 })
  }
  if (isRetryable(err)) {
    // A race still lost after every retry: say so plainly rather than answer 500.
    return new PoolError('unavailable', 'The pool is too busy to settle this request; nothing was changed. Try again.', { cause: err, retryAfterSeconds: 1 })
  }
  return err
}

function codeOf (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Runs op, retrying the races the database resolved by aborting one side. */
export async function withRetry<T> (op: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await op()
    } catch (err) {
      if (i >= attempts || !isRetryable(err)) throw translateDbError(err)
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * i))
    }
  }
}
