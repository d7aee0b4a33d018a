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
 * Takes a user's request on this node out of a pool's queue, in turn. A lease a turn on
 * any node granted it meanwhile is released (reason released); returns whether one was.
 */
export async function leave (db: Db, pool: string, userId: string, node: string): Promise<boolean> {
  const [row] = await db.query<{ released: boolean }>('SELECT tp_leave($1, $2::uuid, $3::uuid) AS released', [pool, userId, node])
  return row?.released ?? false
}

/** Removes the row of a waiter this node has just answered with the lease a turn granted it. */
export async function handedOver (db: Db, pool: string, userId: string, node: string): Promise<void> {
  await db.query('DELETE FROM waiters WHERE pool = $1 AND user_id = $2::uuid AND node = $3::uuid', [pool, userId, node])
}

/** Takes every request of this node out of every queue (shutdown), giving back what was granted to them. */
export async function leaveAll (db: Db, node: string): Promise<void> {
  await db.query('SELECT tp_leave_all($1::uuid)', [node])
}

/** Every pool's rows of dead nodes go, and what was granted to them goes back (the sweep). */
export async function forgetDead (db: Db): Promise<void> {
  await db.query('SELECT tp_forget_dead_waiters(name, clock_timestamp()) FROM pools')
}
