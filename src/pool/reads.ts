import { decodeCursor, encodeCursor } from '../domain/cursor.js'
import type { Id } from '../domain/ids.js'
import type { PoolStats, PoolView, TokenStatus, TokenView, Usage } from '../domain/types.js'
import * as pools from '../store/pools.js'
import * as usages from '../store/usages.js'
import { poolNotFound, read, tokenNotFound, usage } from './answers.js'
import type { PoolContext, PoolHead } from './context.js'
import type { PoolState } from './model/pool-state.js'

export interface TokenPage {
  tokens: TokenView[]
  nextCursor: string | null
}

// Tokens read per statement when a whole pool is streamed or exported.
const STREAM_PAGE = 5_000

/**
 * The reads of rule 15: pools, tokens and stats from this node's read model, caught up
 * with every change committed before the read; histories and exports from the database.
 */
export class PoolReads {
  private statsMemo = { generation: -1, answers: new Map<string, PoolStats>() }

  constructor (private readonly ctx: PoolContext) {}

  /** Every pool, in name order, with its settings and counts. */
  async listPools (): Promise<PoolView[]> {
    await this.caughtUp()
    return this.ctx.model.allPools().map((state) => this.viewOf(state)).sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  async getPool (name: string): Promise<PoolView> {
    return this.viewOf(await this.poolState(name))
  }

  /** One page of a pool's tokens in creation order, with the whole pool's counts. */
  async list (pool: string, opts: { status?: TokenStatus, limit?: number, cursor?: string } = {}): Promise<TokenPage & { counts: PoolHead }> {
    const limit = opts.limit ?? 10_000
    const scope = `pool/${pool}`
    const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor, scope)
    const state = await this.poolState(pool)
    const rows = state.page(opts.status, after, limit + 1)
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return {
      counts: this.headOf(state),
      tokens: page.map((t) => state.view(t)!),
      nextCursor: rows.length > limit && last !== undefined ? encodeCursor(scope, last.position) : null,
    }
  }

  /**
   * Every token of a pool, a page at a time from the read model (no copy of the pool is
   * made), with the pool's counts. The one catch-up is made here, before the caller sends
   * anything: a database failure is an error answer, never a body cut after its first byte.
   */
  async streamTokens (pool: string, status?: TokenStatus): Promise<{ counts: PoolHead, tokens: AsyncGenerator<TokenView> }> {
    const state = await this.poolState(pool)
    return { counts: this.headOf(state), tokens: this.tokensFrom(pool, state, status) }
  }

  private async * tokensFrom (pool: string, first: PoolState, status?: TokenStatus): AsyncGenerator<TokenView> {
    let state = first
    let after: number | undefined
    for (;;) {
      // A page from the pool's current copy (a reload may have replaced it meanwhile).
      state = this.ctx.model.pool(pool) ?? state
      const rows = state.page(status, after, STREAM_PAGE)
      for (const t of rows) {
        // Between two yields time passes: a retired token whose lease ended is gone.
        const view = state.view(t)
        if (view !== undefined) yield view
      }
      if (rows.length < STREAM_PAGE) return
      after = rows.at(-1)!.position
    }
  }

  async head (pool: string): Promise<PoolHead> {
    return this.headOf(await this.poolState(pool))
  }

  /** One token, whichever pool holds it (or only in `pool`). */
  async get (tokenId: Id, pool?: string): Promise<TokenView> {
    await this.caughtUp()
    const found = this.ctx.model.token(tokenId)
    const view = found?.pool.view(found.token)
    if (found === undefined || view === undefined || (pool !== undefined && view.pool !== pool)) {
      if (pool !== undefined && this.ctx.model.pool(pool) === undefined) throw poolNotFound(pool)
      throw tokenNotFound()
    }
    if (view.activeUsage !== null && found.token.renewable_until !== null) view.activeUsage.renewableUntil = new Date(found.token.renewable_until)
    return view
  }

  async history (tokenId: Id, limit: number, cursor: string | undefined, pool?: string): Promise<{ usages: Usage[], nextCursor: string | null }> {
    const scope = `token/${tokenId}`
    const before = cursor === undefined ? undefined : decodeCursor(cursor, scope)
    const rows = await read(async () => await usages.history(this.ctx.db, tokenId, limit + 1, before))
    // A usage names its token's pool; only a page without any asks which pool the token is in.
    const owner = rows[0]?.pool ?? await read(async () => await pools.poolOfToken(this.ctx.db, tokenId))
    if (owner === undefined || (pool !== undefined && owner !== pool)) {
      if (pool !== undefined) await this.getPool(pool)
      throw tokenNotFound()
    }
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return { usages: page.map(usage), nextCursor: rows.length > limit && last !== undefined ? encodeCursor(scope, last.id) : null }
  }

  /** Every usage of a pool started in [since, until), oldest first, a page at a time. */
  async * export (pool: string, since?: Date, until?: Date): AsyncGenerator<Usage & { pool: string, tokenId: string }> {
    await this.getPool(pool)
    let after: { startedAt: Date, id: number } | undefined
    for (;;) {
      const rows = await read(async () => await usages.exportPage(this.ctx.db, pool, since, until, after, STREAM_PAGE))
      for (const r of rows) yield { ...usage(r), pool: r.pool, tokenId: r.token_id }
      if (rows.length < STREAM_PAGE) return
      const last = rows.at(-1)!
      after = { startedAt: last.started_at, id: last.id }
    }
  }

  /**
   * The current window's statistics of a pool, from the read model's counters: no scan at
   * any size. Reads answered after the same catch-up share one answer object, so that the
   * HTTP layer can serialize it once.
   */
  async stats (pool: string, leastUsedLimit = 100): Promise<PoolStats> {
    const state = await this.poolState(pool)
    const key = `${pool}\0${leastUsedLimit}`
    const generation = this.ctx.model.generation
    if (this.statsMemo.generation !== generation) this.statsMemo = { generation, answers: new Map() }
    let answer = this.statsMemo.answers.get(key)
    if (answer === undefined) {
      answer = Object.freeze(this.computeStats(state, leastUsedLimit))
      this.statsMemo.answers.set(key, answer)
    }
    return answer
  }

  /** Under /api/pools/:pool/…, a token of another pool is not found. */
  async checkPoolOf (tokenId: Id, pool: string | undefined): Promise<void> {
    if (pool === undefined) return
    const owner = await read(async () => await pools.poolOfToken(this.ctx.db, tokenId))
    if (owner !== pool) {
      await this.getPool(pool)
      throw tokenNotFound()
    }
  }

  /** The read model, caught up with every change committed before this call (a database failure is 503). */
  async caughtUp (): Promise<void> {
    await read(async () => { await this.ctx.model.catchUp() })
  }

  private computeStats (state: PoolState, leastUsedLimit: number): PoolStats {
    const u = state.usage(leastUsedLimit)
    return {
      pool: state.name,
      ...this.headOf(state),
      allocationsInWindow: u.allocationsInWindow,
      usageCount: { min: u.min, max: u.max, mean: u.mean },
      leastUsedCount: u.leastUsedCount,
      leastUsed: u.leastUsed.map((t) => ({ tokenId: t.id, usageCount: t.count })),
    }
  }

  private async poolState (pool: string): Promise<PoolState> {
    await this.caughtUp()
    const state = this.ctx.model.pool(pool)
    if (state === undefined) throw poolNotFound(pool)
    return state
  }

  private viewOf (state: PoolState): PoolView {
    const { name, window_started_at: _, ...settings } = state.settings
    const { windowStartedAt: _s, windowResetsAt: _r, ...counts } = this.headOf(state)
    return { name, ...settings, ...counts }
  }

  private headOf (state: PoolState): PoolHead {
    const f = state.figures()
    return {
      total: f.total,
      active: f.active,
      available: f.available,
      cooling: f.cooling,
      disabled: f.disabled,
      waiting: this.ctx.model.waitingIn(state.name),
      windowStartedAt: new Date(f.windowStartedAt),
      windowResetsAt: new Date(f.windowResetsAt),
    }
  }
}
