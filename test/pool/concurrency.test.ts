import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newId, parseId } from '../../src/domain/ids.js'
import type { PoolEvent } from '../../src/pool/context.js'
import { TokenPool, type PoolOptions } from '../../src/pool/pool.js'
import { openPostgres } from '../../src/store/pg-db.js'
import type { Lease } from '../../src/domain/types.js'
import { overlaps } from '../helpers/app.js'
import { describeEachBackend, describeMultiConnection, POSTGRES_URL, testDb } from '../helpers/db.js'

const options: PoolOptions = { defaultPool: { size: 10 }, sweepIntervalMs: 0 }

/** Checks every acknowledged lease against the stored history, and the invariants in SQL. */
async function verify (db: Parameters<typeof overlaps>[0], granted: Lease[]) {
  assert.deepEqual(await overlaps(db), [], 'no token ever had two overlapping usages')
  const rows = await db.query<{ id: number, token_id: string, user_id: string, started_at: Date }>('SELECT id, token_id, user_id, started_at FROM usages')
  const byId = new Map(rows.map((r) => [r.id, r]))
  for (const l of granted) {
    const row = byId.get(l.leaseId)
    assert.ok(row, `lease ${l.leaseId} was acknowledged, so it is stored`)
    assert.equal(row.token_id, l.tokenId)
    assert.equal(row.user_id, l.userId)
    assert.equal(row.started_at.getTime(), l.startedAt.getTime())
  }
  const [open] = await db.query<{ users: number, tokens: number, n: number }>(
    'SELECT count(DISTINCT user_id)::int AS users, count(DISTINCT token_id)::int AS tokens, count(*)::int AS n FROM usages WHERE released_at IS NULL')
  assert.equal(open?.users, open?.n, 'one open usage per user')
  assert.equal(open?.tokens, open?.n, 'one open usage per token')
  const [sum] = await db.query<{ counted: number, usages: number }>(
    'SELECT (SELECT sum(usage_count) FROM tokens)::int AS counted, (SELECT count(*) FROM usages)::int AS usages')
  assert.equal(sum?.counted, sum?.usages, 'every new lease counted once')
}

describeEachBackend('hundreds of concurrent allocations on a small pool', (backend) => {
  test('concurrent cooldowns, disables and enables share transactions, each with its own answer and event', async (t) => {
    const pool = new TokenPool(await testDb(t, backend), { ...options, defaultPool: { size: 12, lease_ttl_seconds: 60 } })
    await pool.start()
    t.after(async () => { await pool.stop() })
    const leases = await Promise.all(Array.from({ length: 8 }, async () => await pool.allocate(newId())))
    const free = (await pool.list()).tokens.filter((x) => x.status === 'available').map((x) => x.id)
    const events: PoolEvent[] = []
    pool.on('change', (e) => { events.push(e) })
    const outcomes = await Promise.allSettled([
      ...leases.slice(0, 4).map(async (l) => await pool.cooldown(l.tokenId, l.userId, 30)),
      ...leases.slice(4, 6).map(async (l) => await pool.disable(l.tokenId, 'revoked')),
      pool.cooldown(leases[6]!.tokenId, newId(), 30),
      pool.disable(free[0]!, null).then(async () => await pool.enable(free[0]!)),
      pool.cooldown(free[1]!, null, 99_999),
    ])
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'rejected'])
    assert.equal((outcomes[6] as PromiseRejectedResult).reason.code, 'not_holder')
    assert.equal((outcomes[8] as PromiseRejectedResult).reason.code, 'validation_failed')
    for (const o of outcomes.slice(0, 4)) assert.equal((o as PromiseFulfilledResult<{ endedLease: { releaseReason: string } }>).value.endedLease.releaseReason, 'cooldown')
    const head = await pool.head('default')
    assert.deepEqual([head.cooling, head.disabled, head.active], [4, 2, 2])
    assert.equal(events.filter((e) => e.type === 'cooling').length, 4)
    assert.equal(events.filter((e) => e.type === 'released').length, 6)
    assert.equal((await pool.get(free[0]!)).status, 'available')
  })

  test('concurrent releases and renewals share transactions, and each still gets its own answer and one event', async (t) => {
    const pool = new TokenPool(await testDb(t, backend), { ...options, defaultPool: { size: 40, lease_ttl_seconds: 60, lease_max_seconds: 600 } })
    await pool.start()
    t.after(async () => { await pool.stop() })
    const leases = await Promise.all(Array.from({ length: 40 }, async () => await pool.allocate(newId())))
    const events: PoolEvent[] = []
    pool.on('change', (e) => { events.push(e) })
    const renewals = await Promise.allSettled(leases.map(async (l) => await pool.renew(l.tokenId, l.userId)))
    assert.ok(renewals.every((r) => r.status === 'fulfilled' && r.value.leaseId === leases.find((l) => l.tokenId === r.value.tokenId)!.leaseId))
    const outcomes = await Promise.allSettled([
      ...leases.map(async (l) => await pool.release(l.tokenId, l.userId)),
      // The same release twice in one batch is one release; a stranger is not the holder.
      pool.release(leases[0]!.tokenId, leases[0]!.userId),
      pool.release(leases[1]!.tokenId, newId()),
    ])
    assert.equal(outcomes.slice(0, 41).filter((o) => o.status === 'fulfilled').length, 41)
    assert.equal(outcomes[41]!.status, 'rejected')
    assert.equal((outcomes[41] as PromiseRejectedResult).reason.code, 'not_holder')
    assert.equal(events.filter((e) => e.type === 'renewed').length, 40)
    assert.equal(events.filter((e) => e.type === 'released').length, 40)
    await assert.rejects(pool.release(leases[2]!.tokenId, leases[2]!.userId), { code: 'not_holder' })
    assert.equal((await pool.head('default')).active, 0)
  })

  test('300 allocations from 120 users at once, with releases and a clear mixed in', async (t) => {
    const db = await testDb(t, backend)
    const pool = new TokenPool(db, options)
    await pool.start()
    const users = Array.from({ length: 120 }, () => newId())
    const granted: Lease[] = []
    await Promise.all(Array.from({ length: 300 }, async (_, i) => {
      const lease = await pool.allocate(users[i % users.length]!)
      granted.push(lease)
      if (i % 7 === 0) await pool.release(lease.tokenId, lease.userId).catch((err: { code?: string }) => assert.equal(err.code, 'not_holder'))
      if (i === 150) await pool.clear()
    }))
    assert.equal(granted.length, 300)
    await verify(db, granted)
  })

  test('evict_oldest: a burst of more users than tokens all get a lease (each evicting the oldest), never pool_exhausted', async (t) => {
    const db = await testDb(t, backend)
    const pool = new TokenPool(db, { defaultPool: { size: 2 }, sweepIntervalMs: 0 })
    await pool.start()
    const granted = await Promise.all(Array.from({ length: 9 }, async () => await pool.allocate(newId())))
    assert.equal(new Set(granted.map((l) => l.leaseId)).size, 9)
    await verify(db, granted)
    const { counts } = await pool.list()
    assert.equal(counts.active, 2)
    const reasons = await db.query<{ release_reason: string | null, n: number }>(
      'SELECT release_reason, count(*)::int AS n FROM usages GROUP BY 1 ORDER BY 1 NULLS LAST')
    assert.deepEqual(reasons, [{ release_reason: 'evicted', n: 7 }, { release_reason: null, n: 2 }])
  })

  test('the same user asking many times at once gets one lease', async (t) => {
    const db = await testDb(t, backend)
    const pool = new TokenPool(db, options)
    await pool.start()
    const user = newId()
    const events: PoolEvent[] = []
    pool.on('change', (e) => events.push(e))
    const leases = await Promise.all(Array.from({ length: 50 }, async () => await pool.allocate(user)))
    assert.equal(new Set(leases.map((l) => l.leaseId)).size, 1)
    // One lease granted, so one allocated event, however many requests asked for it.
    assert.deepEqual(events.map((e) => e.type), ['allocated'])
    assert.equal(events[0]?.type === 'allocated' && events[0].lease.leaseId, leases[0]!.leaseId)
    // And a repeat after the batch is not a change either.
    await pool.allocate(user)
    assert.equal(events.length, 1)
    // Spread over many batches (one a turn of the event loop): still one lease, one event.
    const other = newId()
    const spread: Array<Promise<Lease>> = []
    for (let i = 0; i < 50; i++) {
      spread.push(pool.allocate(other))
      await new Promise((resolve) => setImmediate(resolve))
    }
    const otherLeases = await Promise.all(spread)
    assert.equal(new Set(otherLeases.map((l) => l.leaseId)).size, 1)
    assert.deepEqual(events.map((e) => e.type), ['allocated', 'allocated'])
    assert.equal(leases.filter((l) => l.isNew).length >= 1, true)
    const [row] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM usages')
    assert.equal(row?.n, 2)
  })
})

describeMultiConnection('several pools (nodes) racing on one PostgreSQL', () => {
  test('three pools with their own connections never double-lease a token', async (t) => {
    const db = await testDb(t, 'postgres')
    const [{ schema }] = await db.query<{ schema: string }>('SELECT current_schema() AS schema') as [{ schema: string }]
    const nodes = await Promise.all([1, 2, 3].map(async () => {
      const nodeDb = openPostgres(POSTGRES_URL!, { schema, max: 8 })
      t.after(async () => { await nodeDb.close() })
      const pool = new TokenPool(nodeDb, { ...options, defaultPool: { size: 5 } })
      await pool.start()
      return pool
    }))
    const users = Array.from({ length: 60 }, () => newId())
    const granted: Lease[] = []
    await Promise.all(Array.from({ length: 600 }, async (_, i) => {
      granted.push(await nodes[i % 3]!.allocate(users[(i * 7) % users.length]!))
    }))
    await verify(db, granted)
  })
})

describeEachBackend('ids in any case', (backend) => {
  test('an upper-case user or token id is the same id', async (t) => {
    const pool = new TokenPool(await testDb(t, backend), { ...options, defaultPool: { size: 2, lease_ttl_seconds: 60, lease_max_seconds: 600 } })
    await pool.start()
    t.after(async () => { await pool.stop() })
    const user = newId()
    const upper = (id: string) => parseId(id.toUpperCase(), 'id')
    const lease = await pool.allocate(upper(user))
    assert.equal(lease.userId, user)
    assert.equal((await pool.allocate(user)).leaseId, lease.leaseId)
    assert.equal((await pool.renew(upper(lease.tokenId), upper(user))).leaseId, lease.leaseId)
    assert.equal((await pool.release(upper(lease.tokenId), upper(user))).leaseId, lease.leaseId)
  })
})

describeEachBackend('two nodes, every operation at once', (backend) => {
  test('a cooldown set through one node holds on the other, to its end', async (t) => {
    const db = await testDb(t, backend)
    const settings = { defaultPool: { size: 1, lease_ttl_seconds: 60, on_exhausted: 'reject' as const }, sweepIntervalMs: 0 }
    const a = new TokenPool(db, settings)
    const b = new TokenPool(db, settings)
    await a.start()
    t.after(async () => { await a.stop(); await b.stop() })
    const [token] = (await a.list()).tokens
    // Long enough for node b's first request (which starts it) on a loaded machine.
    const { token: cooling } = await a.cooldown(token!.id, null, 2)
    await assert.rejects(b.allocate(newId()), { code: 'pool_exhausted' })
    // Waiting on the other node: served when the cooldown ends, not before.
    const lease = await b.allocate(newId(), 'default', { waitSeconds: 5 })
    assert.ok(lease.startedAt >= cooling.coolingUntil!, `${lease.startedAt.toISOString()} ≥ ${cooling.coolingUntil!.toISOString()}`)
  })

  test('allocations (waiting or not), renewals, cooldowns, releases, disables and clears from 30 users on two nodes leave no overlap', async (t) => {
    const db = await testDb(t, backend)
    const settings = { defaultPool: { size: 4, lease_ttl_seconds: 0.5, lease_max_seconds: 2, on_exhausted: 'reject' as const, max_wait_seconds: 5 }, sweepIntervalMs: 0 }
    const nodes = [new TokenPool(db, settings), new TokenPool(db, settings)]
    await nodes[0]!.start()
    t.after(async () => { for (const n of nodes) await n.stop() })
    const tokenIds = (await nodes[0]!.list()).tokens.map((x) => x.id)
    const answered = new Map<string, number>()
    const count = (what: string) => { answered.set(what, (answered.get(what) ?? 0) + 1) }
    // A fixed script per user (no randomness): each one mixes the operations differently.
    await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      const node = nodes[i % 2]!
      const user = newId()
      for (let step = 0; step < 6; step++) {
        const kind = (i + step) % 6
        try {
          if (kind === 5) {
            if (i % 10 === 0) await node.clear()
            else await node.disable(tokenIds[i % 4]!, 'mix').then(async () => await node.enable(tokenIds[i % 4]!))
            count(i % 10 === 0 ? 'clear' : 'disable/enable')
            continue
          }
          const lease = await node.allocate(user, 'default', { waitSeconds: kind % 2 === 0 ? 1 : 0 })
          count('allocated')
          if (kind === 1) await node.renew(lease.tokenId, user).then(() => { count('renewed') })
          else if (kind === 2) await node.cooldown(lease.tokenId, user, 0.05).then(() => { count('cooled') })
          else if (kind === 3) await node.release(lease.tokenId, user).then(() => { count('released') })
        } catch (err) {
          // Refusals are answers; anything else fails the test.
          const code = (err as { code?: string }).code
          assert.ok(['pool_exhausted', 'not_holder', 'renewal_limit'].includes(code ?? ''), String(err))
          count(code!)
        }
      }
    }))
    assert.ok((answered.get('allocated') ?? 0) > 10, JSON.stringify([...answered]))
    await verify(db, [])
    assert.equal((await nodes[0]!.head('default')).waiting, 0)
  })
})
