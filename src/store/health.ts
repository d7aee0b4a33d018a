import type { Db } from './db.js'

export interface DbHealthChange {
  outcome: 'cooling' | 'disabled' | 'enabled' | 'labelled' | 'not_found' | 'not_holder' | 'token_disabled' | 'too_long'
  pool: string | null
  /** the pool's cooldown_max_seconds (cooldown only) */
  max_seconds?: number | null
  /** the lease the change ended, if any */
  lease_id?: number | null
  user_id?: string | null
  started_at?: Date | null
  released_at?: Date | null
}

/** By the holder (userId) or an admin (null). */
export async function cooldown (db: Db, tokenId: string, userId: string | null, seconds: number): Promise<DbHealthChange> {
  const [row] = await db.query<DbHealthChange>('SELECT * FROM tp_cooldown($1::uuid, $2::uuid, $3)', [tokenId, userId, seconds])
  return row!
}

export async function disable (db: Db, tokenId: string, reason: string | null): Promise<DbHealthChange> {
  const [row] = await db.query<DbHealthChange>('SELECT * FROM tp_disable($1::uuid, $2)', [tokenId, reason])
  return row!
}

export async function enable (db: Db, tokenId: string): Promise<DbHealthChange> {
  const [row] = await db.query<DbHealthChange>('SELECT * FROM tp_enable($1::uuid)', [tokenId])
  return row!
}

export async function label (db: Db, tokenId: string, text: string | null): Promise<DbHealthChange> {
  const [row] = await db.query<DbHealthChange>('SELECT * FROM tp_label($1::uuid, $2)', [tokenId, text])
  return row!
}
