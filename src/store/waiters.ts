import type { Db } from './db.js'

/** Keeps this node's queue rows alive for another aliveMs (rule 12: a dead node's rows lapse). */
export async function heartbeat (db: Db, node: string, aliveMs: number): Promise<void> {
  await db.query(
    'UPDATE waiters SET alive_until = clock_timestamp() + make_interval(secs => $2::int / 1000.0) WHERE node = $1::uuid',
    [node, aliveMs])
}

/** Takes a user's request on this node out of a pool's queue. */
export async function leave (db: Db, pool: string, userId: string, node: string): Promise<void> {
  await db.query('DELETE FROM waiters WHERE pool = $1 AND user_id = $2::uuid AND node = $3::uuid', [pool, userId, node])
}

/** Takes every request of this node out of every queue (shutdown). */
export async function leaveAll (db: Db, node: string): Promise<void> {
  await db.query('DELETE FROM waiters WHERE node = $1::uuid', [node])
}
