import type { PoolSettings } from '../domain/types.js'
import type { Db } from './db.js'

// Tokens made or retired per statement: 50,000 take about a second, well inside the statement timeout.
const PROVISION_STEP = 50_000

/** A pool's name and settings, as `pools p` has them. */
export const POOL_COLUMNS = `p.name, p.size, p.lease_ttl_seconds, p.lease_max_seconds, p.usage_window_hours, p.on_exhausted,
                      p.max_wait_seconds, p.cooldown_max_seconds, p.user_quota`

/** The settings of a pool not deleted, or undefined. */
export async function settings (db: Db, name: string): Promise<(PoolSettings & { name: string }) | undefined> {
  const [row] = await db.query<PoolSettings & { name: string }>(
    `SELECT ${POOL_COLUMNS} FROM pools p WHERE p.name = $1 AND NOT p.deleted`, [name])
  return row
}

/** Whether the pool was ever given tokens (a new database's `default` was not yet). */
export async function isProvisioned (db: Db, name: string): Promise<boolean> {
  const [row] = await db.query<{ yes: boolean }>('SELECT EXISTS (SELECT 1 FROM tokens t WHERE t.pool = $1) AS yes', [name])
  return row?.yes === true
}

export async function create (db: Db, name: string, s: PoolSettings): Promise<'created' | 'exists'> {
  const [row] = await db.query<{ outcome: 'created' | 'exists' }>('SELECT tp_pool_create($1, $2::jsonb) AS outcome', [name, JSON.stringify(s)])
  return row!.outcome
}

/** Changes the given settings; `emit` writes a pool_changed event when anything changed. */
export async function update (db: Db, name: string, changes: Partial<PoolSettings>, emit: boolean): Promise<'changed' | 'not_found'> {
  const [row] = await db.query<{ outcome: 'changed' | 'not_found' }>(
    'SELECT tp_pool_update($1, $2::jsonb, $3) AS outcome', [name, JSON.stringify(changes), emit])
  return row!.outcome
}

export async function remove (db: Db, name: string, force: boolean): Promise<'deleted' | 'not_found' | 'busy'> {
  const [row] = await db.query<{ outcome: 'deleted' | 'not_found' | 'busy' }>('SELECT tp_pool_delete($1, $2) AS outcome', [name, force])
  return row!.outcome
}

/** Retires a deleted pool's tokens, a step at a time. */
export async function retireAll (db: Db, name: string): Promise<void> {
  for (;;) {
    const [row] = await db.query<{ left: number }>('SELECT tp_pool_retire($1, $2) AS left', [name, PROVISION_STEP])
    if (row === undefined || row.left === 0) return
  }
}

/**
 * Makes the pool hold exactly its size in live tokens (rule 1), a step at a time; ids are
 * created once and kept. Each step reads the size then in force, so two nodes at it agree.
 */
export async function provision (db: Db, name: string): Promise<void> {
  for (;;) {
    const [row] = await db.query<{ live: number | null, size: number | null }>('SELECT * FROM tp_provision_step($1, $2)', [name, PROVISION_STEP])
    if (row === undefined || row.live === row.size) return
  }
}

/** The pool each of these tokens belongs to (deleted pools included). */
export async function poolOfToken (db: Db, tokenId: string): Promise<string | undefined> {
  const [row] = await db.query<{ pool: string }>('SELECT pool FROM tokens WHERE id = $1::uuid', [tokenId])
  return row?.pool
}

/** Stores count 0 on tokens whose count is of an older window, a step at a time (rule 5's bookkeeping). */
export async function forgetOldCounts (db: Db, name: string, step: number): Promise<number> {
  const [row] = await db.query<{ n: number }>('SELECT tp_forget_old_counts($1, $2) AS n', [name, step])
  return row?.n ?? 0
}

/** Names of every pool not deleted. */
export async function names (db: Db): Promise<string[]> {
  return (await db.query<{ name: string }>('SELECT name FROM pools WHERE NOT deleted ORDER BY name')).map((r) => r.name)
}
