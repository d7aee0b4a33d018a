import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { newId, parseId } from '../../src/domain/ids.js'
import { TokenPool } from '../../src/pool/pool.js'
import type { Db } from '../../src/store/db.js'
import * as waiters from '../../src/store/waiters.js'
import type { DbGrant } from '../../src/store/leases.js'
import { WaitingRoom, type Asked } from '../../src/pool/waiting.js'
import { PoolError } from '../../src/domain/errors.js'
import { build, defaultPool } from '../helpers/app.js'
import { describeEachBackend, describeMultiConnection, heldSession, someoneWaitsOn, testDb, type Backend } from '../helpers/db.js'
import { until } from '../helpers/until.js'

async function openLeases (db: Db, user: string): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM usages WHERE user_id = $1 AND released_at IS NULL AND expires_at > clock_timestamp()', [user])
  return row!.n
}

function queuedSignal () {
  let queued!: () => void
  const promise = new Promise<void>((resolve) => { queued = resolve })
  return { promise, onQueued: () => { queued() } }
}

// Races found in review, each forced by holding a lock where the race would fall.
describeMultiConnection('waiting: races between a turn and a waiter leaving', () => {
  test('a waiter that leaves while another node\'s turn grants it gets the lease given back, not held by nobody', async (t) => {
    const { pool, db } = await build(t, 'postgres', { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60, userQuota: 5 })
    const x = newId()
    const first = await pool.allocate(x)
    await pool.release(first.tokenId, x)
    // x waits on another node; the token frees.
    const otherNode = newId()
    await db.query(`INSERT INTO waiters (pool, user_id, place, node, alive_until)
                    VALUES ('default', $1, nextval('waiter_places'), $2, clock_timestamp() + interval '1 hour')`, [x, otherNode])
    // A plain request's turn grants x, stalled inside the grant (x's quota row is locked).
    const lock = heldSession(db)
    const s = await lock.s
    await s.query('BEGIN')
    await s.query('SELECT * FROM user_window_leases WHERE user_id = $1 FOR UPDATE', [x])
    const plain = pool.allocate(newId()).catch((err: { code?: string }) => err.code)
    await until(async () => await someoneWaitsOn(db, s), 'the turn waits inside the grant')
    // x's node: x times out and leaves. Leaving takes the turn, so it waits for this one.
    const left = waiters.leave(db, 'default', x, otherNode)
    await s.query('COMMIT')
    await lock.end()
    assert.equal(await plain, 'pool_exhausted')
    assert.equal(await left, true, 'leaving gave back the lease the turn granted')
    assert.equal(await openLeases(db, x), 0)
    assert.equal((await pool.head('default')).available, 1)
  })

  test('a waiter that leaves while its own try is in the database, after another node granted it, gets the lease given back', async (t) => {
    const { pool, db } = await build(t, 'postgres', { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    const node2 = new TokenPool(db, { defaultPool: defaultPool({ poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 }), sweepIntervalMs: 0 })
    t.after(async () => { await node2.stop() })
    const holder = await pool.allocate(newId())
    const x = newId()
    const gone = new AbortController()
    const q = queuedSignal()
    const answer = node2.allocate(x, 'default', { waitSeconds: 20, signal: gone.signal, onQueued: q.onQueued }).catch((err: Error) => err.message)
    await q.promise
    // Hold the turn, so node 2's next try waits in the database.
    const lock = heldSession(db)
    const s = await lock.s
    await s.query("SELECT pg_advisory_lock(hashtextextended('turns default', 7412))")
    await db.query('SELECT tp_release($1, $2)', [holder.tokenId, holder.userId])
    // What another node's turn does: grant x and mark its row.
    await s.query('SELECT tp_grant(p, tp_window(\'default\'), ARRAY[$1::uuid], ARRAY[$2::uuid], ARRAY[NULL::bigint]) FROM pools p WHERE name = \'default\'', [x, holder.tokenId])
    await s.query('UPDATE waiters SET granted_token = $2 WHERE user_id = $1', [x, holder.tokenId])
    await until(async () => await someoneWaitsOn(db, s), 'node 2 tries again')
    gone.abort()
    await s.query("SELECT pg_advisory_unlock(hashtextextended('turns default', 7412))")
    await lock.end()
    assert.equal(await answer, 'the caller went away')
    await until(async () => await openLeases(db, x) === 0, 'the lease x was granted goes back')
  })

  test('a node that stops gives back what another node\'s turn granted its waiters', async (t) => {
    const { pool, db } = await build(t, 'postgres', { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    const node2 = new TokenPool(db, { defaultPool: defaultPool({ poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 }), sweepIntervalMs: 0 })
    const holder = await pool.allocate(newId())
    const x = newId()
    const q = queuedSignal()
    const answer = node2.allocate(x, 'default', { waitSeconds: 20, onQueued: q.onQueued }).catch((err: { code?: string }) => err.code)
    await q.promise
    // Hold the turn (node 2's tries wait), and do what another node's turn does: grant x, mark its row.
    const lock = heldSession(db)
    const s = await lock.s
    await s.query("SELECT pg_advisory_lock(hashtextextended('turns default', 7412))")
    await db.query('SELECT tp_release($1, $2)', [holder.tokenId, holder.userId])
    await s.query('SELECT tp_grant(p, tp_window(\'default\'), ARRAY[$1::uuid], ARRAY[$2::uuid], ARRAY[NULL::bigint]) FROM pools p WHERE name = \'default\'', [x, holder.tokenId])
    await s.query('UPDATE waiters SET granted_token = $2 WHERE user_id = $1', [x, holder.tokenId])
    // Node 2 stops before it hands the lease over.
    const stopping = node2.stop()
    await s.query("SELECT pg_advisory_unlock(hashtextextended('turns default', 7412))")
    await lock.end()
    await stopping
    assert.equal(await answer, 'unavailable')
    assert.equal(await openLeases(db, x), 0)
  })
})

describeEachBackend('waiting: the deadline timer', (backend) => {
  test('a refusal on the node just before an expiry does not delay the waiter served at it', async (t) => {
    // 1.5 s: the queue's 1 s poll (started as the waiter joins) next looks about 0.5 s after
    // the expiry, so a grant well before then is the deadline timer's.
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 1.5 })
    const holder = await pool.allocate(newId())
    const q = queuedSignal()
    const waiting = pool.allocate(newId(), 'default', { waitSeconds: 5, onQueued: q.onQueued })
    await q.promise
    await sleep(Math.max(0, holder.expiresAt.getTime() - Date.now() - 150))
    await assert.rejects(pool.allocate(newId()), { code: 'pool_exhausted' })
    const lease = await waiting
    assert.ok(lease.startedAt.getTime() - holder.expiresAt.getTime() < 400, `served ${lease.startedAt.getTime() - holder.expiresAt.getTime()} ms after the expiry`)
  })
})

/** A waiting room on its own, whose given-back leases are listed, and the rows a batch answers. */
async function lonelyRoom (t: TestContext, backend: Backend) {
  const db = await testDb(t, backend)
  const given: number[] = []
  const room = new WaitingRoom({
    db,
    retry: async () => {},
    giveBack: async (_pool, lease) => { given.push(Number(lease.tokenId.slice(-4))) },
    timedOut: () => new PoolError('pool_exhausted', 'time is up'),
    poke: () => {},
  })
  t.after(async () => { await room.close() })
  const user = newId()
  const row = (outcome: DbGrant['outcome'], leaseId: number): DbGrant => ({
    user_id: user,
    outcome,
    lease_id: leaseId,
    token_id: parseId(`00000000-0000-4000-8000-00000000${String(leaseId).padStart(4, '0')}`, 'token_id'),
    started_at: new Date(),
    expires_at: new Date(Date.now() + 60_000),
    renewable_until: new Date(Date.now() + 60_000),
    evicted_user_id: null,
    retry_after_ms: null,
    position: null,
    waiting: null,
    estimated_grant_at: null,
    wake_at: null,
    now: new Date(),
  })
  // A batch that asks for the user as a waiter, sent now.
  const batch = (): Asked => ({ waiters: new Set([user]), waiterOnly: new Set([user]), retried: new Set([user]), sentAfter: room.sentAfter() })
  return { room, user, row, batch, given }
}

describeEachBackend('waiting: two batches answering one waiter', (backend) => {
  // Two batches may ask for one waiter at once (a turn and a retry). The one answered second
  // finds the waiter served, with the very lease it names: that lease must stay with it.
  for (const order of [['new', 'existing'], ['existing', 'new']] as const) {
    test(`answered '${order[0]}' then '${order[1]}' with the same lease: it is not given back; a lease never answered is`, async (t) => {
      const { room, user, row, batch, given } = await lonelyRoom(t, backend)
      const served = room.enter('default', user, 30, {})
      const first = batch()
      const second = batch()
      room.apply('default', [row(order[0], 7)], first, new Date())
      assert.equal((await served).lease_id, 7)
      room.apply('default', [row(order[1], 7)], second, new Date())
      assert.deepEqual(given, [], 'the lease the waiter was handed stays with it')
      // Control: a late answer naming a lease nobody here was handed (the waiter left) gives it back.
      room.apply('default', [row('existing', 8)], second, new Date())
      assert.deepEqual(given, [8])
    })
  }

  test('a lease a slow batch saw the user hold does not settle the user\'s next waiting request', async (t) => {
    const { room, user, row, batch, given } = await lonelyRoom(t, backend)
    const served = room.enter('default', user, 30, {})
    const slow = batch()
    const quick = batch()
    room.apply('default', [row('new', 7)], quick, new Date())
    assert.equal((await served).lease_id, 7)
    // The user gives lease 7 back and waits again; then the slow batch answers what it saw.
    const next = room.enter('default', user, 30, {})
    room.apply('default', [row('existing', 7)], slow, new Date())
    const settled = await Promise.race([next.then(() => 'settled'), sleep(50).then(() => 'still waiting')])
    assert.equal(settled, 'still waiting', 'a lease given back before this request began is not its answer')
    assert.deepEqual(given, [], 'nor is it given back again')
    room.apply('default', [row('new', 9)], batch(), new Date())
    assert.equal((await next).lease_id, 9)
  })

  test('nor does it settle a request that joined the same user\'s wait after the batch was sent', async (t) => {
    const { room, user, row, batch, given } = await lonelyRoom(t, backend)
    const first = room.enter('default', user, 30, {})
    const slow = batch()
    // The user gives lease 7 back and asks again (another thread of it) while the first still waits.
    const second = room.enter('default', user, 30, {})
    room.apply('default', [row('existing', 7)], slow, new Date())
    assert.equal((await first).lease_id, 7, 'the request the batch was sent for gets its answer')
    const settled = await Promise.race([second.then(() => 'settled'), sleep(50).then(() => 'still waiting')])
    assert.equal(settled, 'still waiting')
    assert.deepEqual(given, [])
    room.apply('default', [row('new', 9)], batch(), new Date())
    assert.equal((await second).lease_id, 9)
  })
})
