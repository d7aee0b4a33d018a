// The service's JSON API, with the contract's error body turned into an ApiError.

export class ApiError extends Error {
  constructor (status, code, message, details) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
  }
}

/**
 * fetch + JSON. Resolves to { data, meta, serverTime } (serverTime from the Date
 * header, ms, or null); rejects with ApiError carrying the contract's code and message.
 */
export async function api (path, { method = 'GET', body, adminToken } = {}) {
  const headers = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (adminToken) headers.authorization = `Bearer ${adminToken}`
  let res
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' })
  } catch {
    throw new ApiError(0, 'network', 'The service cannot be reached. Is it running?')
  }
  let json = null
  try { json = await res.json() } catch { /* not JSON: handled below */ }
  if (!res.ok) {
    const e = json?.error
    if (e) throw new ApiError(res.status, e.code, e.message, e.details)
    throw new ApiError(res.status, 'http_' + res.status, `The service answered ${res.status} ${res.statusText}.`)
  }
  const date = res.headers.get('date')
  return { data: json?.data, meta: json?.meta, serverTime: date ? Date.parse(date) : null, retryAfter: res.headers.get('retry-after') }
}

/** "pool_exhausted: Every token is leased…" with Retry-After or the field named, for the feedback line. */
export function describeError (err) {
  if (!(err instanceof ApiError)) return String(err?.message ?? err)
  let text = err.status === 0 ? err.message : `${err.message} (${err.status} ${err.code})`
  const seconds = err.details?.retry_after_seconds
  if (seconds !== undefined) text += ` Try again in ${seconds} s.`
  return text
}
