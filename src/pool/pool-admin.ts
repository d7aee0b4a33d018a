import { PoolError } from '../domain/errors.js'
import { DEFAULT_POOL, withDefaults, type PoolSettings, type PoolView } from '../domain/types.js'
import * as pools from '../store/pools.js'
import { withRetry } from '../store/sqlstate.js'
import { managedByConfig, poolNotFound, read } from './answers.js'
import type { PoolContext } from './context.js'
import type { PoolReads } from './reads.js'

/** Creating, changing and deleting named pools (admin); `default` is the configuration's. */
export class PoolAdmin {
  constructor (
    private readonly ctx: PoolContext,
    private readonly reads: PoolReads,
    /** drops what this node keeps for a pool that is gone */
    private readonly forget: (name: string) => void
  ) {}

  async createPool (name: string, given: Partial<PoolSettings>): Promise<PoolView> {
    const s = withDefaults(given)
    checkSettings(s)
    const outcome = await withRetry(async () => await pools.create(this.ctx.db, name, s))
    if (outcome === 'exists') throw new PoolError('pool_exists', `A pool named ${name} exists already.`)
    await this.provision(name, s.size, 'created')
    return await this.poolChanged(name)
  }

  async updatePool (name: string, changes: Partial<PoolSettings>): Promise<PoolView> {
    if (name === DEFAULT_POOL) throw managedByConfig()
    const current = await read(async () => await pools.settings(this.ctx.db, name))
    if (current === undefined) throw poolNotFound(name)
    // A cap equal to the TTL (the default: no renewal past the first lease) follows a new TTL,
    // unless the change sets the cap itself.
    if (changes.lease_ttl_seconds !== undefined && changes.lease_max_seconds === undefined && current.lease_max_seconds === current.lease_ttl_seconds) {
      changes = { ...changes, lease_max_seconds: changes.lease_ttl_seconds }
    }
    const next = { ...current, ...changes }
    checkSettings(next)
    const outcome = await withRetry(async () => await pools.update(this.ctx.db, name, changes, true))
    if (outcome === 'not_found') throw poolNotFound(name)
    await this.provision(name, next.size, 'changed')
    return await this.poolChanged(name)
  }

  async deletePool (name: string, force: boolean): Promise<void> {
    if (name === DEFAULT_POOL) throw managedByConfig()
    const outcome = await withRetry(async () => await pools.remove(this.ctx.db, name, force))
    if (outcome === 'not_found') throw poolNotFound(name)
    if (outcome === 'busy') {
      throw new PoolError('pool_busy', `Pool ${name} has active leases; delete with ?force=true to end them.`)
    }
    this.forget(name)
    this.ctx.hint.poke()
    this.ctx.changed({ type: 'pool_changed', pool: { name, deleted: true } })
    // The pool is gone for users already; its tokens' flags only matter to a pool created
    // again under the name, whose provisioning retires what is surplus.
    await this.afterCommit(async () => { await pools.retireAll(this.ctx.db, name) },
      `Pool ${name} was deleted, but the database failed while its tokens were being retired; ` +
      'nothing else needs doing (a pool created again under this name settles them).')
  }

  /**
   * Brings the pool to `size` tokens, a statement at a time, after its settings committed.
   * Should a step fail, the settings stand and the bookkeeping of every node finishes the
   * job (TokenPool.sweep): the answer says so rather than "nothing was changed".
   */
  private async provision (name: string, size: number, done: 'created' | 'changed'): Promise<void> {
    await this.afterCommit(async () => { await pools.provision(this.ctx.db, name) },
      `Pool ${name} was ${done}, but the database failed while its tokens were being brought to ${size}; ` +
      'the service finishes that by itself as soon as the database answers. Check it with GET /api/pools/' + name + '.')
  }

  /**
   * A step that follows a committed change: a database failure is still a 503, but its
   * message says what was saved (`saved`) instead of "nothing was changed", and the other
   * nodes hear of what was.
   */
  private async afterCommit (step: () => Promise<void>, saved: string): Promise<void> {
    try {
      await withRetry(step)
    } catch (err) {
      if (!(err instanceof PoolError) || err.code !== 'unavailable') throw err
      this.ctx.hint.poke()
      throw new PoolError('unavailable', saved, { cause: err, retryAfterSeconds: err.retryAfterSeconds ?? 1 })
    }
  }

  private async poolChanged (name: string): Promise<PoolView> {
    this.ctx.hint.poke()
    const view = await this.reads.getPool(name)
    this.ctx.changed({ type: 'pool_changed', pool: view })
    return view
  }
}

function checkSettings (s: PoolSettings): void {
  if (s.lease_max_seconds < s.lease_ttl_seconds) {
    throw new PoolError('validation_failed', 'lease_max_seconds must be at least lease_ttl_seconds', {
      details: { field: 'lease_max_seconds', location: 'body', issues: [{ field: 'lease_max_seconds', message: 'must be at least lease_ttl_seconds' }] },
    })
  }
}
