import { PoolError } from './errors.js'

// Opaque to clients; versioned so the format can change without breaking old links.
const PREFIX = 'v1:'

export function encodeCursor (leaseId: number): string {
  return Buffer.from(PREFIX + leaseId).toString('base64url')
}

export function decodeCursor (cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const id = Number(text.slice(PREFIX.length))
  if (!text.startsWith(PREFIX) || !Number.isSafeInteger(id) || id < 1 || encodeCursor(id) !== cursor) {
    throw new PoolError('validation_failed', 'cursor is not one this service gave out', {
      details: { field: 'cursor', location: 'querystring', issues: [{ field: 'cursor', message: 'must be a next_cursor from a previous page' }] },
    })
  }
  return id
}
