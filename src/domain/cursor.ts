import { PoolError } from './errors.js'

// Opaque to clients. A cursor names what it pages (a pool's tokens, a token's history), so
// one given out for another pool or token is refused rather than silently skipping rows.
const PREFIX = 'v2:'

export function encodeCursor (scope: string, key: number): string {
  return Buffer.from(`${PREFIX}${scope}:${key}`).toString('base64url')
}

/** The key of a cursor given out for `scope`; anything else is a 422 naming `cursor`. */
export function decodeCursor (cursor: string, scope: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const head = `${PREFIX}${scope}:`
  const key = Number(text.slice(head.length))
  if (!text.startsWith(head) || !Number.isSafeInteger(key) || key < 1 || encodeCursor(scope, key) !== cursor) {
    throw new PoolError('validation_failed', 'cursor is not one this service gave out for this list', {
      details: { field: 'cursor', location: 'querystring', issues: [{ field: 'cursor', message: 'must be a next_cursor from a previous page of the same list' }] },
    })
  }
  return key
}
