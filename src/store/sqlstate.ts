import { PoolError } from '../domain/errors.js'

/** Races that a retry settles: deadlock, serialization failure, and our constraints firing under a race. */
const RETRYABLE = new Set(['40P01', '40001', '23505', '23P01'])

// A SQLSTATE: classes 0x–5x, F0, HV, P0, XX. Checked by shape so an fs errno such as EPERM is not mistaken for one.
const SQLSTATE = /^([0-5][0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}$/
// What the database says when our SQL is wrong (bad data, a syntax error or missing object, a constraint our
// own code broke, a RAISE of ours): a bug, not an outage, so it stays a 500 and gets logged.
const BUG = /^(0A|21|22|23|42|P0)/

// Everything else from the database or its driver is an outage: 503. The one question left is whether the
// statement might have run, which decides what the client may assume.
//
// The connection broke while a statement may have been in flight, so it may have committed.
const BROKEN_CODES = /^(08000|08003|08006|08007|08P01|40003|57P01|57P02|57P05)$/
const BROKEN_ERRNOS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED'])
// pg's words for a dropped connection or a server that stopped answering mid-query.
const BROKEN_MESSAGES = /^(Connection terminated(?! due to connection timeout)|Query read timeout|terminating connection)/i
// Refused before any statement ran: no route, no such host, no such database, login refused, too many
// connections, connections not allowed, the server still starting.
const REFUSED_ERRNOS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL'])
const REFUSED_MESSAGES = /^(timeout exceeded when trying to connect|Connection terminated due to connection timeout|Cannot use a pool after calling end|Client was closed and is not queryable|Client has encountered a connection error|PGlite is closed)/i

const NOTHING_CHANGED = 'The database is unavailable; nothing was changed. Try again shortly.'
const OUTCOME_UNKNOWN = 'The connection to the database broke during the request, so the outcome is unknown; retrying is safe ' +
  '(allocate returns the same lease, a repeated release answers 409 not_holder).'

export function isRetryable (err: unknown): boolean {
  return RETRYABLE.has(codeOf(err) ?? '')
}

/**
 * Turns a database failure into the contract's error: 503 for anything but a bug of ours, which passes
 * through (500). The message says whether the request may have taken effect; a read never does.
 */
export function translateDbError (err: unknown, read = false): PoolError | unknown {
  if (err instanceof PoolError) return err
  const outcome = outcomeOf(err)
  if (outcome === undefined) return err
  if (isRetryable(err)) {
    // A race still lost after every retry: say so plainly rather than answer 500.
    return new PoolError('unavailable', 'The pool is too busy to settle this request; nothing was changed. Try again.', { cause: err, retryAfterSeconds: 1 })
  }
  return new PoolError('unavailable', outcome === 'unknown' && !read ? OUTCOME_UNKNOWN : NOTHING_CHANGED, { cause: err, retryAfterSeconds: 1 })
}

/**
 * 'unchanged': the statement did not run, or the server rolled it back (any error it reports on a statement
 * ends that statement's transaction). 'unknown': the connection broke with the statement possibly in flight.
 * undefined: a bug of ours, or not from the database at all.
 */
function outcomeOf (err: unknown): 'unchanged' | 'unknown' | undefined {
  const code = codeOf(err)
  if (code !== undefined && BROKEN_ERRNOS.has(code)) return 'unknown'
  if (code !== undefined && REFUSED_ERRNOS.has(code)) return 'unchanged'
  if (code !== undefined && SQLSTATE.test(code)) {
    if (BUG.test(code) && !isRetryable(err)) return undefined
    return BROKEN_CODES.test(code) ? 'unknown' : 'unchanged'
  }
  // The driver's own failures carry no code, only a message.
  const message = err instanceof Error ? err.message : ''
  if (REFUSED_MESSAGES.test(message)) return 'unchanged'
  if (BROKEN_MESSAGES.test(message)) return 'unknown'
  return undefined
}

/** An error's code: a SQLSTATE, or Node's (ENOENT, ECONNREFUSED, …). */
export function codeOf (err: unknown): string | undefined {
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
