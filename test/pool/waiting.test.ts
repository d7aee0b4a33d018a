import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { PoolError } from '../../src/domain/errors.js'
import { newId, type Id } from '../../src/domain/ids.js'
import type { Lease } from '../../src/domain/types.js'
import { TokenPool } from '../../src/pool/pool.js'
import type { QueueState } from '../../src/pool/waiting.js'
import { build, defaultPool, overlaps } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'
import { until } from '../helpers/until.js'

/** Resolves with the first queue state a waiter is told, and collects every later one. */
function watcher () {
  const states: QueueState[] = []
  let first!: (s: QueueState) => void
  const queued = new Promise<QueueState>((resolve) => { first = resolve })
  return { states, queued, onQueued: (s: QueueState) => { states.push(s); first(s) } }
}

async function waitingIn (pool: TokenPool, name = 'default'): Promise<number> {
  return (await pool.head(name)).waiting
}

describeEachBackend('waiting for a token (rule 12)', (backend) => {
  test('a waiter is served when the holder releases, and is told its place and served-by time first', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    const a = await pool.allocate(newId())
    const w = watcher()
    const b = newId()
    const served = pool.allocate(b, 'default', { waitSeconds: 10, onQueued: w.onQueued })
    const state = await w.queued
    assert.deepEqual(state, { position: 1, waiting: 1, estimatedGrantAt: a.expiresAt })
    assert.equal(await waitingIn(pool), 1)
    const ended = await pool.release(a.tokenId, a.userId)
    const lease = await served
    assert.equal(lease.tokenId, a.tokenId)
    assert.equal(lease.userId, b)
    assert.ok(lease.startedAt >= ended.releasedAt)
    assert.equal(await waitingIn(pool), 0)
  })

  test('first come, first served: waiters get freed tokens in the order they joined', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 2, onExhausted: 'reject', leaseTtlSeconds: 60 })
    const holders = [await pool.allocate(newId()), await pool.allocate(newId())]
    const order: string[] = []
    const waiters: Array<{ user: string, lease: Promise<Lease> }> = []
    for (let i = 0; i < 4; i++) {
      const user = newId()
      const w = watcher()
      const lease = pool.allocate(user, 'default', { waitSeconds: 20, onQueued: w.onQueued })
      lease.then((l) => { order.push(l.userId) }, () => {})
      // Each joins only once the one before is in the queue.
      assert.equal((await w.queued).position, i + 1)
      waiters.push({ user, lease })
    }
    // Free tokens one at a time: each goes to the oldest waiter.
    let freeing = holders.map((h) => ({ tokenId: h.tokenId, userId: h.userId }))
    for (let i = 0; i < 4; i++) {
      const next = freeing.shift()!
      await pool.release(next.tokenId, next.userId)
      const lease = await waiters[i]!.lease
      freeing.push({ tokenId: lease.tokenId, userId: lease.userId })
    }
    assert.deepEqual(order, waiters.map((w) => w.user))
    freeing = []
    assert.deepEqual(await overlaps(pool.db), [])
  })

  test('served at an expiry, to the millisecond of the database clock, with no sweep running', async (t) => {
    // 1.3 s: the queue's 1 s poll (started as the waiter joins) next looks about 0.7 s after
    // the expiry, so an answer well before then is the deadline timer's.
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 1.3 })
    const a = await pool.allocate(newId())
    const lease = await pool.allocate(newId(), 'default', { waitSeconds: 5 })
    const lag = Date.now() - a.expiresAt.getTime()
    assert.equal(lease.tokenId, a.tokenId)
    // Its lease begins as the token frees: the expiry itself, to the millisecond, when the
    // grant came within the 100 ms the server allows its timer and statement; a machine
    // stalled for longer gets the moment it was really granted.
    if (lag < 100) assert.equal(lease.startedAt.getTime(), a.expiresAt.getTime())
    else assert.ok(lease.startedAt >= a.expiresAt && lease.startedAt.getTime() <= Date.now())
    // The database runs on this machine: one clock.
    assert.ok(lag < 400, `answered ${lag} ms after the expiry`)
  })

  test('the served-by bound holds: no waiter is served after the estimated_grant_at it was last told', async (t) => {
    // Three tokens whose leases run out 0.25 s apart, one cooling; four waiters in a row.
    const { pool } = await build(t, backend, { poolSize: 4, onExhausted: 'reject', leaseTtlSeconds: 2 })
    for (let i = 0; i < 3; i++) {
      await pool.allocate(newId())
      await sleep(250)
    }
    const cooled = await pool.allocate(newId())
    await pool.cooldown(cooled.tokenId, cooled.userId, 1)
    const waiters = Array.from({ length: 4 }, () => ({ w: watcher(), user: newId() }))
    const leases: Array<Promise<{ lease: Lease, answeredAt: number }>> = []
    for (const { w, user } of waiters) {
      leases.push(pool.allocate(user, 'default', { waitSeconds: 10, onQueued: w.onQueued }).then((lease) => ({ lease, answeredAt: Date.now() })))
      await w.queued
    }
    const served = await Promise.all(leases)
    for (const [i, { lease, answeredAt }] of served.entries()) {
      const told = waiters[i]!.w.states.at(-1)!.estimatedGrantAt
      assert.ok(told !== null, `waiter ${i} was told a time`)
      // The server allows 100 ms for its timer and statement; a machine stalled for longer
      // serves late, and the lease then starts when it was really granted.
      const bound = answeredAt - told.getTime() < 100 ? told.getTime() : answeredAt
      assert.ok(lease.startedAt.getTime() <= bound, `waiter ${i} served at ${lease.startedAt.toISOString()}, told ${told.toISOString()}`)
    }
    assert.deepEqual(await overlaps(pool.db), [])
  })

  test('a cooldown end and an enable serve waiters too', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 2, onExhausted: 'evict_oldest', leaseTtlSeconds: 60 })
    const [t1, t2] = (await pool.list()).tokens
    await pool.cooldown(t1!.id, null, 2)
    await pool.disable(t2!.id, 'revoked')
    // evict_oldest: nothing can be evicted (every token cooling or disabled), so it waits.
    const w0 = watcher()
    const first = pool.allocate(newId(), 'default', { waitSeconds: 10, onQueued: w0.onQueued })
    assert.equal((await w0.queued).position, 1)
    const w = watcher()
    const second = pool.allocate(newId(), 'default', { waitSeconds: 10, onQueued: w.onQueued })
    assert.equal((await w.queued).position, 2)
    const byCooldown = await first
    assert.equal(byCooldown.tokenId, t1!.id)
    await pool.enable(t2!.id)
    assert.equal((await second).tokenId, t2!.id)
  })

  test('time-out: 409 pool_exhausted with Retry-After, and the waiter leaves the queue', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    await pool.allocate(newId())
    await assert.rejects(pool.allocate(newId(), 'default', { waitSeconds: 0.3 }), (err: PoolError) => {
      assert.equal(err.code, 'pool_exhausted')
      assert.ok(err.retryAfterSeconds! >= 59 && err.retryAfterSeconds! <= 60)
      return true
    })
    await until(async () => await waitingIn(pool) === 0, 'the queue is empty')
  })

  test('a waiter that goes away leaves the queue at once, and those behind move up', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    await pool.allocate(newId())
    const gone = new AbortController()
    const w1 = watcher()
    const first = pool.allocate(newId(), 'default', { waitSeconds: 20, signal: gone.signal, onQueued: w1.onQueued })
    first.catch(() => {})
    await w1.queued
    const w2 = watcher()
    const second = pool.allocate(newId(), 'default', { waitSeconds: 20, onQueued: w2.onQueued })
    second.catch(() => {})
    assert.equal((await w2.queued).position, 2)
    gone.abort()
    await assert.rejects(first)
    await until(async () => w2.states.at(-1)?.position === 1, 'the second waiter is told it is first')
    assert.equal(w2.states.at(-1)!.waiting, 1)
    assert.equal(await waitingIn(pool), 1)
  })

  test('a lease granted to a waiter that went away in that instant is released at once', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    for (let round = 0; round < 10; round++) {
      const holder = await pool.allocate(newId())
      const gone = new AbortController()
      const user = newId()
      const w = watcher()
      const waiting = pool.allocate(user, 'default', { waitSeconds: 20, signal: gone.signal, onQueued: w.onQueued })
      waiting.catch(() => {})
      await w.queued
      // The token frees and the waiter goes, in the same turn: whichever the database sees first,
      // the token must not stay held by nobody.
      const released = pool.release(holder.tokenId, holder.userId)
      if (round % 2 === 0) await sleep(round)
      gone.abort()
      await released
      const lease = await waiting.catch(() => null)
      if (lease !== null) {
        // Served before it went: the lease is its own (over HTTP, the route gives it back).
        await pool.release(lease.tokenId, user)
        continue
      }
      // Settled: nobody waits and the token is free (a lease granted meanwhile given back).
      await until(async () => await waitingIn(pool) === 0 && (await pool.get(holder.tokenId)).status === 'available', 'the token is free again')
      const [last] = (await pool.history(holder.tokenId, 1, undefined)).usages
      if (last!.userId === user) assert.equal(last!.releaseReason, 'released')
    }
    assert.equal(await waitingIn(pool), 0)
  })

  test('nobody takes a token while an older waiter waits, nobody evicts, and a dead node\'s waiters lapse', async (t) => {
    const { pool, db } = await build(t, backend, { poolSize: 2, onExhausted: 'evict_oldest', leaseTtlSeconds: 60 })
    const holder = await pool.allocate(newId())
    // Older waiters on another node (rows kept alive by its heartbeat).
    const other = newId()
    const joinElsewhere = async (user: string) => await db.query(
      `INSERT INTO waiters (pool, user_id, place, node, alive_until)
       VALUES ('default', $1, nextval('waiter_places'), $2, clock_timestamp() + interval '1 hour')`, [user, other])
    const first = newId()
    await joinElsewhere(first)
    // A token is free, but it is the older waiter's: this turn grants it to that waiter (its
    // node hands it over), and evict_oldest evicts nobody while anyone waits.
    await assert.rejects(pool.allocate(newId()), { code: 'pool_exhausted' })
    const [granted] = await db.query<{ granted_token: Id }>('SELECT granted_token FROM waiters WHERE user_id = $1', [first])
    const firstToken = await pool.get(granted!.granted_token)
    assert.equal(firstToken.activeUsage?.userId, first)
    assert.equal((await pool.get(holder.tokenId)).activeUsage?.userId, holder.userId)
    await joinElsewhere(newId())
    const w = watcher()
    const late = pool.allocate(newId(), 'default', { waitSeconds: 20, onQueued: w.onQueued })
    late.catch(() => {})
    assert.deepEqual(await w.queued, { position: 2, waiting: 2, estimatedGrantAt: firstToken.activeUsage!.expiresAt })
    // The other node dies: its rows lapse, the lease it was handed goes back, and the
    // newcomer moves up and gets that token, evicting nobody.
    await db.query('UPDATE waiters SET alive_until = clock_timestamp() WHERE node = $1', [other])
    const lease = await late
    assert.equal(lease.tokenId, firstToken.id)
    assert.equal(lease.evictedUserId, null)
    const [ended] = (await pool.history(firstToken.id, 2, undefined)).usages.filter((u) => u.userId === first)
    assert.equal(ended!.releaseReason, 'released')
  })

  test('the served-by time is the k-th earliest deadline, and is sent again when it changes', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 2, onExhausted: 'reject', leaseTtlSeconds: 60 })
    const h1 = await pool.allocate(newId())
    await sleep(20)
    const h2 = await pool.allocate(newId())
    const w1 = watcher()
    const w2 = watcher()
    const w3 = watcher()
    const p1 = pool.allocate(newId(), 'default', { waitSeconds: 20, onQueued: w1.onQueued })
    assert.equal((await w1.queued).estimatedGrantAt?.getTime(), h1.expiresAt.getTime())
    const p2 = pool.allocate(newId(), 'default', { waitSeconds: 20, onQueued: w2.onQueued })
    assert.equal((await w2.queued).estimatedGrantAt?.getTime(), h2.expiresAt.getTime())
    const p3 = pool.allocate(newId(), 'default', { waitSeconds: 20, onQueued: w3.onQueued })
    p3.catch(() => {})
    assert.deepEqual(await w3.queued, { position: 3, waiting: 3, estimatedGrantAt: null })
    // The first holder leaves early: the first waiter is served, the others move up, and the
    // third now has a time: the new lease's end.
    await pool.release(h1.tokenId, h1.userId)
    const l1 = await p1
    await until(async () => w3.states.at(-1)?.position === 2, 'the third waiter moves up')
    assert.deepEqual(w2.states.at(-1), { position: 1, waiting: 2, estimatedGrantAt: h2.expiresAt })
    assert.deepEqual(w3.states.at(-1), { position: 2, waiting: 2, estimatedGrantAt: l1.expiresAt })
    await pool.release(h2.tokenId, h2.userId)
    await p2
  })

  test('a holder gets its lease back at once; a waiter calling again keeps its place', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    const a = await pool.allocate(newId())
    const again = await pool.allocate(a.userId, 'default', { waitSeconds: 10 })
    assert.equal(again.leaseId, a.leaseId)
    const user = newId()
    const w1 = watcher()
    const first = pool.allocate(user, 'default', { waitSeconds: 10, onQueued: w1.onQueued })
    await w1.queued
    const w2 = watcher()
    const second = pool.allocate(user, 'default', { waitSeconds: 10, onQueued: w2.onQueued })
    assert.deepEqual(await w2.queued, { position: 1, waiting: 1, estimatedGrantAt: a.expiresAt })
    // Without waiting, the same user is refused: it does not wait, and its place is not given to it.
    await assert.rejects(pool.allocate(user), { code: 'pool_exhausted' })
    await pool.release(a.tokenId, a.userId)
    const [l1, l2] = await Promise.all([first, second])
    assert.equal(l1.leaseId, l2.leaseId)
  })

  test('a quota is checked before queueing: 429 wins over waiting', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60, userQuota: 1 })
    const user = newId()
    const a = await pool.allocate(user)
    await pool.release(a.tokenId, user)
    await pool.allocate(newId())
    await assert.rejects(pool.allocate(user, 'default', { waitSeconds: 10 }), { code: 'quota_exceeded' })
    assert.equal(await waitingIn(pool), 0)
  })

  test('wait_seconds above the pool\'s max_wait_seconds is a 422 naming it, and changes nothing', async (t) => {
    const { pool } = await build(t, backend, { poolSize: 1, onExhausted: 'reject' })
    await pool.createPool('nowait', { size: 1, max_wait_seconds: 0 })
    await assert.rejects(pool.allocate(newId(), 'nowait', { waitSeconds: 1 }), (err: PoolError) => {
      assert.equal(err.code, 'validation_failed')
      assert.equal((err.details as { field: string }).field, 'wait_seconds')
      return true
    })
    await assert.rejects(pool.allocate(newId(), 'default', { waitSeconds: 61 }), { code: 'validation_failed' })
    assert.equal((await pool.head('nowait')).active, 0)
    assert.equal((await pool.head('default')).active, 0)
  })

  test('stopping a node answers its waiters 503 and takes them out of the queue', async (t) => {
    const { pool, db } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    await pool.allocate(newId())
    const node = new TokenPool(db, { defaultPool: defaultPool({ poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 }), sweepIntervalMs: 0 })
    const w = watcher()
    const waiting = node.allocate(newId(), 'default', { waitSeconds: 20, onQueued: w.onQueued })
    await w.queued
    const answered = assert.rejects(waiting, (err: PoolError) => {
      assert.equal(err.code, 'unavailable')
      assert.equal(err.retryAfterSeconds, 1)
      return true
    })
    await node.stop()
    await answered
    assert.equal(await waitingIn(pool), 0)
  })

  test('two nodes on one database share one queue, in order', async (t) => {
    const { pool, db } = await build(t, backend, { poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 })
    const other = new TokenPool(db, { defaultPool: defaultPool({ poolSize: 1, onExhausted: 'reject', leaseTtlSeconds: 60 }), sweepIntervalMs: 0 })
    t.after(async () => { await other.stop() })
    let holder = await pool.allocate(newId())
    const nodes = [other, pool, other, pool]
    const waiters: Array<Promise<Lease>> = []
    for (const [i, node] of nodes.entries()) {
      const w = watcher()
      waiters.push(node.allocate(newId(), 'default', { waitSeconds: 20, onQueued: w.onQueued }))
      assert.equal((await w.queued).position, i + 1)
    }
    const served: string[] = []
    for (const [i, node] of nodes.entries()) {
      await (i % 2 === 0 ? pool : other).release(holder.tokenId, holder.userId)
      holder = await waiters[i]!
      served.push(node === other ? 'other' : 'this')
    }
    assert.deepEqual(served, ['other', 'this', 'other', 'this'])
    assert.deepEqual(await overlaps(db), [])
  })
})
