import type { Id } from '../domain/ids.js'
import type { Db } from './db.js'

export interface DbHealthChange {
  outcome: 'cooling' | 'disabled' | 'enabled' | 'labelled' | 'not_found' | 'not_holder' | 'token_disabled' | 'too_long'
  pool: string | null
  /** the pool's cooldown_max_seconds (cooldown only) */
  max_seconds?: number | null
  /** the lease the change ended, if any */
  lease_id?: number | null
  user_id?: Id | null
  started_at?: Date | null
  released_at?: Date | null
}

/** A cooldown (by the holder, or an admin with userId null), a disable or an enable of one token. */
export type HealthChange =
  | { kind: 'cooldown', tokenId: string, userId: string | null, seconds: number }
  | { kind: 'disable', tokenId: string, reason: string | null }
  | { kind: 'enable', tokenId: string }

/** Many health changes in one transaction (tp_health_many); one row per change, in the order given. */
export async function changeMany (db: Db, changes: HealthChange[]): Promise<DbHealthChange[]> {
  const rows = await db.query<DbHealthChange & { i: number }>('SELECT * FROM tp_health_many($1::text[], $2::uuid[], $3::uuid[], $4::float8[], $5::text[])', [
    changes.map((c) => c.kind),
    changes.map((c) => c.tokenId),
    changes.map((c) => (c.kind === 'cooldown' ? c.userId : null)),
    changes.map((c) => (c.kind === 'cooldown' ? c.seconds : null)),
    changes.map((c) => (c.kind === 'disable' ? c.reason : null)),
  ])
  const byIndex = new Map(rows.map((r) => [r.i, r]))
  return changes.map((_, i) => byIndex.get(i + 1)!)
}

export async function label (db: Db, tokenId: string, text: string | null): Promise<DbHealthChange> {
  const [row] = await db.query<DbHealthChange>('SELECT * FROM tp_label($1::uuid, $2)', [tokenId, text])
  return row!
}
