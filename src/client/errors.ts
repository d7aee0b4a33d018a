import type { ErrorCode } from '../domain/errors.js'

/** A failure the service answered, in the contract's shape: `{"error": {code, message, details}}`. */
export class TokenPoolError extends Error {
  /** the contract's code, e.g. not_holder; `unexpected_response` when the answer was not the service's */
  readonly code: ErrorCode | 'unexpected_response'
  /** the HTTP status */
  readonly status: number
  /** what went wrong, e.g. `{ field: 'user_id' }` for validation_failed */
  readonly details: unknown
  /** seconds to wait before trying again (Retry-After), when the service said */
  readonly retryAfterSeconds: number | undefined
  /** the request's x-request-id, to find its line in the service's log */
  readonly requestId: string | undefined

  constructor (init: { code: ErrorCode | 'unexpected_response', status: number, message: string, details?: unknown, retryAfterSeconds?: number, requestId?: string }) {
    super(init.message)
    this.name = 'TokenPoolError'
    this.code = init.code
    this.status = init.status
    this.details = init.details ?? null
    this.retryAfterSeconds = init.retryAfterSeconds
    this.requestId = init.requestId
  }
}

/** The service could not be reached (refused, reset, DNS, or no answer within the timeout). */
export class TokenPoolUnreachableError extends Error {
  readonly url: string

  constructor (url: string, cause: unknown) {
    super(`cannot reach ${url}: ${describe(cause)}`, { cause })
    this.name = 'TokenPoolUnreachableError'
    this.url = url
  }
}

function describe (cause: unknown): string {
  if (cause instanceof Error) {
    if (cause.name === 'TimeoutError') return 'no answer in time'
    const inner = (cause as { cause?: { code?: string, message?: string } }).cause
    // undici's name for a socket that closed: the service was reached, then hung up.
    if (inner?.code === 'UND_ERR_SOCKET') return 'the connection closed before an answer'
    return inner?.code ?? inner?.message ?? cause.message
  }
  return String(cause)
}
