import { PoolError } from '../domain/errors.js'
import type { Id } from '../domain/ids.js'
import type { EndedLease, ReleaseReason, TokenView } from '../domain/types.js'
import * as health from '../store/health.js'
import { withRetry } from '../store/sqlstate.js'
import { notHolder, tokenNotFound } from './answers.js'
import { Batcher } from './batcher.js'
import { batchesInFlight, MAX_QUEUED, type PoolContext } from './context.js'
import type { PoolReads } from './reads.js'

/**
 * Token health (rule 11): cooldowns, disables and enables, group-committed (every request
 * its own key); and labels.
 */
export class TokenHealth {
  private readonly changes: Batcher<health.DbHealthChange, health.HealthChange>
  private requests = 0

  constructor (private readonly ctx: PoolContext, private readonly reads: PoolReads) {
    this.changes = new Batcher(async (asks) => {
      const rows = await withRetry(async () => await health.changeMany(ctx.db, asks.map((a) => a.item)))
      return new Map(asks.map((a, i) => [a.key, rows[i]!]))
    }, 256, batchesInFlight(ctx.db), MAX_QUEUED)
  }

  /** By the holder (userId) or an admin (userId null): ends the lease, if any, and cools the token. */
  async cooldown (tokenId: Id, userId: Id | null, seconds: number, pool?: string): Promise<{ token: TokenView, endedLease: EndedLease | null }> {
    await this.reads.checkPoolOf(tokenId, pool)
    const row = await this.change({ kind: 'cooldown', tokenId, userId, seconds })
    if (row.outcome === 'not_found') throw tokenNotFound()
    if (row.outcome === 'not_holder') throw notHolder()
    if (row.outcome === 'token_disabled') throw new PoolError('token_disabled', 'The token is disabled; enable it first.')
    if (row.outcome === 'too_long') {
      throw new PoolError('validation_failed', `seconds must be more than 0 and at most the pool's cooldown_max_seconds (${row.max_seconds ?? 0})`, {
        details: { field: 'seconds', location: 'body', issues: [{ field: 'seconds', message: `must be at most ${row.max_seconds ?? 0}` }] },
      })
    }
    return await this.changed('cooling', tokenId, row, 'cooldown')
  }

  async disable (tokenId: Id, reason: string | null, pool?: string): Promise<{ token: TokenView, endedLease: EndedLease | null }> {
    await this.reads.checkPoolOf(tokenId, pool)
    const row = await this.change({ kind: 'disable', tokenId, reason })
    if (row.outcome === 'not_found') throw tokenNotFound()
    return await this.changed('disabled', tokenId, row, 'disabled')
  }

  async enable (tokenId: Id, pool?: string): Promise<TokenView> {
    await this.reads.checkPoolOf(tokenId, pool)
    const row = await this.change({ kind: 'enable', tokenId })
    if (row.outcome === 'not_found') throw tokenNotFound()
    return (await this.changed('enabled', tokenId, row, 'disabled')).token
  }

  async label (tokenId: Id, text: string | null, pool?: string): Promise<TokenView> {
    await this.reads.checkPoolOf(tokenId, pool)
    const row = await withRetry(async () => await health.label(this.ctx.db, tokenId, text))
    if (row.outcome === 'not_found') throw tokenNotFound()
    // It held the token's row for a moment, which a turn skips: waiters look again.
    this.ctx.hint.poke()
    return await this.reads.get(tokenId)
  }

  private async change (change: health.HealthChange): Promise<health.DbHealthChange> {
    return await this.changes.submit(String(++this.requests), change)
  }

  private async changed (type: 'cooling' | 'disabled' | 'enabled', tokenId: Id, row: health.DbHealthChange, reason: ReleaseReason) {
    this.ctx.hint.poke()
    const endedLease: EndedLease | null = row.lease_id == null
      ? null
      : { pool: row.pool!, leaseId: row.lease_id, tokenId, userId: row.user_id!, startedAt: row.started_at!, releasedAt: row.released_at!, releaseReason: reason }
    if (endedLease !== null) this.ctx.changed({ type: 'released', lease: endedLease })
    const token = await this.reads.get(tokenId)
    this.ctx.changed({ type, token })
    return { token, endedLease }
  }
}
