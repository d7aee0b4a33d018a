import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { PoolError } from '../../domain/errors.js'
import { parseId } from '../../domain/ids.js'
import type { TokenPool } from '../../pool/pool.js'
import type { Access } from '../plugins/auth.js'
import * as present from '../present.js'
import { errors, IgnoredBody, Nullable } from '../schemas/common.js'
import { CooldownBody, CooldownResult, DisableBody, EndedLease, LabelBody, TokenDetail } from '../schemas/tokens.js'
import { callerGone, oneLoopTurn } from './allocate-answer.js'
import { POOL_PREFIX, scopeOf, TokenInPoolParams, TokenParams, tokenIdOf } from './scopes.js'

const tags = ['token health']
const admin = [{ bearer: [] }]

/** A token that went bad for a while (cooldown) or for good (disable), and its label. */
const tokenHealthRoutes: FastifyPluginAsyncTypebox<{ pool: TokenPool, access: Access }> = async (app, { pool, access }) => {
  for (const [prefix, params] of [[POOL_PREFIX, TokenInPoolParams], ['/api', TokenParams]] as const) {
    app.post(`${prefix}/tokens/:token_id/cooldown`, {
      schema: {
        tags,
        summary: 'Cool a token down: by its holder (user_id), or by an admin (no user_id)',
        description: 'Ends the lease (reason cooldown) and keeps the token out until now + seconds; a cooldown never shortens one in force. ' +
          'With reallocate, the holder also gets a new lease on another token (waiting up to wait_seconds, as allocate does); ' +
          'if none can be had, lease is null and lease_error says why.',
        params,
        body: CooldownBody,
        response: { 200: CooldownResult, ...errors(400, 401, 404, 409, 413, 415, 422, 429, 503) },
      },
    }, async (request, reply) => {
      const tokenId = tokenIdOf(request.params)
      const userId = request.body.user_id === undefined ? undefined : parseId(request.body.user_id, 'user_id')
      if (userId === undefined) {
        await access.requireAdmin(request)
        if (request.body.reallocate === true) {
          throw new PoolError('validation_failed', 'user_id is required with reallocate', {
            details: { field: 'user_id', location: 'body', issues: [{ field: 'user_id', message: 'is required with reallocate' }] },
          })
        }
      }
      const viewer = access.viewer(request, userId)
      const waitSeconds = request.body.wait_seconds ?? 0
      // A wait the pool refuses is a 422 for the whole call, reallocate or not: checked before anything changes.
      if (waitSeconds > 0) {
        await pool.checkWait(scopeOf(request.params) ?? (await pool.get(tokenId)).pool, waitSeconds)
      }
      const { token, endedLease } = await pool.cooldown(tokenId, userId ?? null, request.body.seconds, scopeOf(request.params))
      let lease = null
      let leaseError = null
      if (request.body.reallocate === true && userId !== undefined) {
        // A caller that hangs up while its new lease waits leaves the queue; one granted as it
        // went goes back (rule 12).
        const gone = callerGone(reply)
        try {
          const next = await pool.allocate(userId, token.pool, { waitSeconds, signal: gone.signal })
          // As for a waiting allocate: a hang-up as the turn came must be seen before answering.
          if (waitSeconds > 0 && !gone.signal.aborted) await oneLoopTurn()
          if (gone.signal.aborted) {
            await pool.release(next.tokenId, userId, next.pool).catch(() => {})
            return reply
          }
          lease = present.lease(next, viewer)
        } catch (err) {
          if (gone.signal.aborted) return reply
          if (!(err instanceof PoolError)) throw err
          leaseError = { code: err.code, message: err.message, details: err.details }
        } finally {
          gone.stop()
        }
      }
      return {
        data: {
          token: present.tokenDetail(token, viewer),
          ended_lease: endedLease === null ? null : present.endedLease(endedLease, viewer),
          lease,
          lease_error: leaseError,
        },
      }
    })

    app.post(`${prefix}/tokens/:token_id/disable`, {
      schema: {
        tags,
        summary: 'Take a token out until enabled (admin); its lease ends with reason disabled',
        security: admin,
        params,
        body: DisableBody,
        response: { 200: Type.Object({ data: Type.Object({ token: TokenDetail, ended_lease: Nullable(EndedLease) }) }), ...errors(400, 401, 404, 413, 415, 422, 429, 503) },
      },
      preValidation: access.requireAdmin,
    }, async (request) => {
      const viewer = access.viewer(request)
      const { token, endedLease } = await pool.disable(tokenIdOf(request.params), request.body.reason ?? null, scopeOf(request.params))
      return { data: { token: present.tokenDetail(token, viewer), ended_lease: endedLease === null ? null : present.endedLease(endedLease, viewer) } }
    })

    app.post(`${prefix}/tokens/:token_id/enable`, {
      schema: {
        tags,
        summary: 'End a token\'s disabled state and its cooldown now (admin)',
        security: admin,
        params,
        body: IgnoredBody,
        response: { 200: Type.Object({ data: Type.Object({ token: TokenDetail }) }), ...errors(400, 401, 404, 413, 415, 422, 429, 503) },
      },
      preValidation: access.requireAdmin,
    }, async (request) => ({ data: { token: present.tokenDetail(await pool.enable(tokenIdOf(request.params), scopeOf(request.params)), access.viewer(request)) } }))

    app.patch(`${prefix}/tokens/:token_id`, {
      schema: {
        tags,
        summary: 'Set or clear a token\'s label (admin)',
        security: admin,
        params,
        body: LabelBody,
        response: { 200: Type.Object({ data: TokenDetail }), ...errors(400, 401, 404, 413, 415, 422, 429, 503) },
      },
      preValidation: access.requireAdmin,
    }, async (request) => ({ data: present.tokenDetail(await pool.label(tokenIdOf(request.params), request.body.label, scopeOf(request.params)), access.viewer(request)) }))
  }
}

export default tokenHealthRoutes
