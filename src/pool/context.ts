import type { EndedLease, Lease, PoolCounts, PoolView, TokenView, WindowInfo } from '../domain/types.js'
import type { Db } from '../store/db.js'
import type { CommitHint } from './commit-hint.js'
import type { ReadModel } from './model/read-model.js'

/** A change this process committed, for its logs and metrics (the event stream reads the table). */
export type PoolEvent =
  | { type: 'allocated' | 'renewed', lease: Lease }
  | { type: 'released' | 'cleared', lease: EndedLease }
  | { type: 'cooling' | 'disabled' | 'enabled', token: TokenView }
  | { type: 'pool_changed', pool: PoolView | { name: string, deleted: true } }

/** A request that queued has its answer (rule 12), for the wait-time metric. */
export interface WaitEnded {
  pool: string
  seconds: number
  outcome: 'allocated' | 'timed_out' | 'gone' | 'failed'
}

/** A pool's counts and window, as listings, stats and the pool view show them. */
export type PoolHead = PoolCounts & WindowInfo

/** What every use case of a pool shares: the database, this node's copy of it, and how news leaves. */
export interface PoolContext {
  readonly db: Db
  /** this node's copy of the pools, which every read is served from */
  readonly model: ReadModel
  /** tells the other nodes (and their waiters) to read the event log now */
  readonly hint: CommitHint
  /** reports a change this process committed */
  readonly changed: (event: PoolEvent) => void
}

// Requests queued in memory per batcher before new ones are refused with 503: a slow
// database must not pile requests up without bound.
export const MAX_QUEUED = 10_000

/** PGlite has one connection; PostgreSQL gets a few batches in flight to overlap round trips. */
export function batchesInFlight (db: Db): number {
  return db.kind === 'pglite' ? 1 : 4
}
