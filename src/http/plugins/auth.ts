import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { PoolError } from '../../domain/errors.js'

const digest = (s: string) => createHash('sha256').update(s).digest()

/** A preHandler that demands `Authorization: Bearer <adminToken>`; compares digests in constant time. */
export function requireAdmin (adminToken: string | undefined) {
  const expected = adminToken === undefined ? undefined : digest(adminToken)
  return async (request: FastifyRequest) => {
    if (expected === undefined) return
    // The scheme is case-insensitive (RFC 9110); the token itself is compared exactly.
    const [, given = ''] = /^bearer +(.*)$/i.exec(request.headers.authorization ?? '') ?? []
    if (!timingSafeEqual(digest(given), expected)) {
      throw new PoolError('unauthorized', 'This needs Authorization: Bearer <ADMIN_TOKEN>.')
    }
  }
}
