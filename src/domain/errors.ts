/** The closed set of failures the pool reports to its users; each maps to one HTTP status. */
export const ERROR_CODES = {
  invalid_json: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  not_holder: 409,
  pool_exhausted: 409,
  renewal_limit: 409,
  pool_exists: 409,
  pool_busy: 409,
  managed_by_config: 409,
  token_disabled: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  rate_limited: 429,
  quota_exceeded: 429,
  internal_error: 500,
  unavailable: 503,
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export class PoolError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details: unknown
  /** seconds a client should wait before trying again, when known */
  readonly retryAfterSeconds: number | undefined

  constructor (code: ErrorCode, message: string, opts: { details?: unknown, retryAfterSeconds?: number, cause?: unknown } = {}) {
    super(message, { cause: opts.cause })
    this.name = 'PoolError'
    this.code = code
    this.status = ERROR_CODES[code]
    this.details = opts.details ?? null
    this.retryAfterSeconds = opts.retryAfterSeconds
  }
}
