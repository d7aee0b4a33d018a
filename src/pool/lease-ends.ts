import type { Id } from '../domain/ids.js'
import { PoolError } from '../domain/errors.js'
import type { EndedLease, Lease } from '../domain/types.js'
import * as leases from '../store/leases.js'
import { withRetry } from '../store/sqlstate.js'
import { ended, notHolder, releasedLease, renewedLease, tokenNotFound } from './answers.js'
import { Batcher } from './batcher.js'
import { batchesInFlight, MAX_QUEUED, type PoolContext, type PoolEvent } from './context.js'
import type { PoolReads } from './reads.js'

interface TokenUser {
  tokenId: string
  userId: string
}

/**
 * What a holder does with its lease — release it, renew it (rule 13) — and an admin's
 * clear. Releases and renewals are group-committed as allocations are: one transaction
 * per batch, one event per change.
 */
export class LeaseEnds {
  private readonly releases: Batcher<leases.DbRelease, TokenUser>
  private readonly renewals: Batcher<leases.DbRenewal, TokenUser>

  constructor (private readonly ctx: PoolContext, private readonly reads: PoolReads) {
    this.releases = holderBatcher(ctx, leases.releaseMany, 'released', (r) => ({ type: 'released', lease: releasedLease(r) }))
    this.renewals = holderBatcher(ctx, leases.renewMany, 'renewed', (r) => ({ type: 'renewed', lease: renewedLease(r) }))
  }

  async release (tokenId: Id, userId: Id, pool?: string): Promise<EndedLease> {
    await this.reads.checkPoolOf(tokenId, pool)
    const row = await this.releases.submit(`${tokenId} ${userId}`, { tokenId, userId })
    if (row.outcome === 'not_found') throw tokenNotFound()
    if (row.outcome === 'not_holder') throw notHolder()
    return releasedLease(row)
  }

  async renew (tokenId: Id, userId: Id, pool?: string): Promise<Lease> {
    await this.reads.checkPoolOf(tokenId, pool)
    const row = await this.renewals.submit(`${tokenId} ${userId}`, { tokenId, userId })
    if (row.outcome === 'not_found') throw tokenNotFound()
    if (row.outcome === 'not_holder') throw notHolder()
    if (row.outcome === 'limit') {
      // tp_renew read the cap from the lease it refused to extend.
      throw new PoolError('renewal_limit', 'The lease already ends at its renewal cap (renewable_until).', {
        details: { renewable_until: row.renewable_until?.toISOString() ?? null },
      })
    }
    return renewedLease(row)
  }

  /** Ends every active lease of the pool now (reason `cleared`); answers how many. */
  async clear (pool: string): Promise<number> {
    await this.reads.getPool(pool)
    const rows = await withRetry(async () => await leases.clear(this.ctx.db, pool))
    if (rows.length > 0) this.ctx.hint.poke()
    for (const r of rows) this.ctx.changed({ type: 'cleared', lease: ended(r, 'cleared') })
    return rows.length
  }
}

/**
 * Group commit of one holder operation: a batch is one statement over every (token, user)
 * pair, each answered by its own row; what took effect is announced once committed.
 */
function holderBatcher<R extends { outcome: string, token_id: string, user_id: string }> (
  ctx: PoolContext,
  write: (db: PoolContext['db'], pairs: TokenUser[]) => Promise<R[]>,
  done: R['outcome'],
  announce: (row: R) => PoolEvent
): Batcher<R, TokenUser> {
  return new Batcher(async (asks) => {
    const rows = await withRetry(async () => await write(ctx.db, distinctPairs(asks)))
    const changed = rows.filter((r) => r.outcome === done)
    if (changed.length > 0) ctx.hint.poke()
    for (const r of changed) ctx.changed(announce(r))
    return new Map(rows.map((r) => [`${r.token_id} ${r.user_id}`, r]))
  }, 256, batchesInFlight(ctx.db), MAX_QUEUED)
}

/** One pair per key: the same release asked twice in one batch is one release with one answer. */
function distinctPairs (asks: Array<{ key: string, item: TokenUser }>): TokenUser[] {
  return [...new Map(asks.map((a) => [a.key, a.item])).values()]
}
