import type { Db } from './db.js'

/** Keeps these queue rows of this node alive for another aliveMs (rule 12: a dead node's rows lapse). */
export async function heartbeat (db: Db, node: string, rows: Array<{ pool: string, user: string }>, aliveMs: number): Promise<void> {
  await db.query(
    `UPDATE waiters w SET alive_until = clock_timestamp() + make_interval(secs => $4::int / 1000.0)
       FROM unnest($2::text[], $3::uuid[]) AS r(pool, user_id)
      WHERE w.node = $1::uuid AND w.pool = r.pool AND w.user_id = r.user_id`,
    [node, rows.map((r) => r.pool), rows.map((r) => r.user), aliveMs])
}

/**
 * Takes a user's request on this node out of a pool's queue. Returns the token a turn on
 * another node granted it meanwhile, if any: the caller gives that lease back.
 */
export async function leave (db: Db, pool: string, userId: string, node: string): Promise<string | null> {
  const [row] = await db.query<{ granted_token: string | null }>(
    'DELETE FROM waiters WHERE pool = $1 AND user_id = $2::uuid AND node = $3::uuid RETURNING granted_token', [pool, userId, node])
  return row?.granted_token ?? null
}

/** Takes every request of this node out of every queue (shutdown). */
export async function leaveAll (db: Db, node: string): Promise<void> {
  await db.query('DELETE FROM waiters WHERE node = $1::uuid', [node])
}
