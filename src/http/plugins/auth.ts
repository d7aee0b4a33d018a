import { createHash, timingSafeEqual } from 'node:crypto'
import { isIPv4, isIPv6 } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { PoolError } from '../../domain/errors.js'
import type { Viewer } from '../present.js'

const digest = (s: string) => createHash('sha256').update(s).digest()

function isLoopback (ip: string): boolean {
  if (isIPv4(ip)) return ip.startsWith('127.')
  if (isIPv6(ip)) return ip === '::1' || /^::ffff:127\./i.test(ip)
  return false
}

/** Who may do admin things, and what each caller may see (the contract's Security section). */
export class Access {
  private readonly expected: Buffer | undefined

  constructor (readonly adminToken: string | undefined) {
    this.expected = adminToken === undefined ? undefined : digest(adminToken)
  }

  /** Whether the request carries the admin token (compared as digests, in constant time). */
  hasAdminToken (request: FastifyRequest): boolean {
    if (this.expected === undefined) return false
    // The scheme is case-insensitive (RFC 9110); the token itself is compared exactly.
    const [, given = ''] = /^bearer +(.*)$/i.exec(request.headers.authorization ?? '') ?? []
    return timingSafeEqual(digest(given), this.expected)
  }

  /**
   * Without ADMIN_TOKEN (development) admin routes answer loopback clients only, and not a
   * request a proxy on this machine forwarded (it would make every client local).
   */
  isAdmin (request: FastifyRequest): boolean {
    if (this.expected === undefined) {
      const forwarded = request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined
      return !forwarded && isLoopback(request.socket.remoteAddress ?? '')
    }
    return this.hasAdminToken(request)
  }

  /**
   * A preValidation hook for admin routes: after the rate limit (onRequest), which must count
   * a caller guessing the token, and before the body is judged, so that a caller without
   * the right is told so first.
   */
  readonly requireAdmin = async (request: FastifyRequest): Promise<void> => {
    if (this.isAdmin(request)) return
    throw new PoolError('unauthorized', this.expected === undefined
      ? 'Admin routes answer only local clients while ADMIN_TOKEN is not set; set ADMIN_TOKEN and send Authorization: Bearer <ADMIN_TOKEN>.'
      : request.headers.authorization === undefined
        ? 'This needs Authorization: Bearer <ADMIN_TOKEN>.'
        : 'The admin token sent was refused: this needs Authorization: Bearer <ADMIN_TOKEN>.')
  }

  /** What this caller sees of user ids; `self` is the user the request acts as. */
  viewer (request: FastifyRequest, self?: string): Viewer {
    if (this.expected === undefined) return { masked: false, fingerprints: false }
    return { masked: !this.hasAdminToken(request), fingerprints: true, self }
  }
}
