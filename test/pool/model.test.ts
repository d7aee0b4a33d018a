import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { parseId, type Id } from '../../src/domain/ids.js'
import { TokenPool } from '../../src/pool/pool.js'
import { overlaps, travel } from '../helpers/app.js'
import { describeEachBackend, scratchDb } from '../helpers/db.js'

/**
 * Random sequences of allocate, release, renew, cooldown, disable, enable, clear and
 * time passing, checked step by step against a small in-memory model of the rules.
 * The property runs directly under fast-check: a failure shrinks to a shortest sequence
 * and prints the seed (FC_SEED=<seed> runs it again).
 */
const USERS = ['a', 'b', 'c', 'd', 'e'].map((c) => parseId(`00000000-0000-4000-8000-${c.repeat(12)}`, 'user'))
const SIZE = 3
const TTL = 120
// Deadlines land on multiples of 10 s and checks on multiples of 50 s, never on each other,
// so the real time a run takes can't tip a check either way.
const MAX = 290
const SEED = Number(process.env.FC_SEED ?? 20261130)

type Op =
  | { kind: 'allocate', user: number }
  | { kind: 'release', user: number, ownToken: boolean }
  | { kind: 'renew', user: number, ownToken: boolean }
  | { kind: 'cooldown', user: number, seconds: number }
  | { kind: 'adminCooldown', token: number, seconds: number }
  | { kind: 'disable', token: number, seconds: number }
  | { kind: 'enable', token: number, seconds: number }
  | { kind: 'clear' }
  | { kind: 'wait', seconds: number }

const user = fc.nat(USERS.length - 1)
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('allocate' as const), user }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), user, ownToken: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('renew' as const), user, ownToken: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cooldown' as const), user, seconds: fc.constantFrom(60, 130) }) },
  ...(['adminCooldown', 'disable', 'enable'] as const).map((kind) => (
    { weight: 1, arbitrary: fc.record({ kind: fc.constant(kind), token: fc.nat(SIZE - 1), seconds: fc.constantFrom(60, 130) }) })),
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('wait' as const), seconds: fc.constantFrom(50, 100, 150, 86_400) }) }
)

interface ModelLease { user: Id, token: Id, leaseId: number, start: number, startedAt: number, expires: number }

class Model {
  now = 0
  windowStart = 0
  counts = new Map<string, number>()
  leases = new Map<string, ModelLease>() // by token
  coolingUntil = new Map<string, number>()
  disabled = new Set<string>()
  constructor (readonly tokens: Id[]) { for (const t of tokens) this.counts.set(t, 0) }

  active (): ModelLease[] { return [...this.leases.values()].filter((l) => l.expires > this.now) }
  leaseOf (u: Id) { return this.active().find((l) => l.user === u) }
  cooling (t: string) { return (this.coolingUntil.get(t) ?? -Infinity) > this.now }
  out (t: string) { return this.disabled.has(t) || this.cooling(t) }
  free () { return this.tokens.filter((t) => !this.out(t) && !this.active().some((l) => l.token === t)) }
  status (t: string) {
    if (this.disabled.has(t)) return 'disabled'
    if (this.cooling(t)) return 'cooling'
    return this.active().some((l) => l.token === t) ? 'active' : 'available'
  }

  endLease (t: string) { this.leases.delete(t) }
  cool (t: string, seconds: number) {
    this.endLease(t)
    this.coolingUntil.set(t, Math.max(this.coolingUntil.get(t) ?? -Infinity, this.now + seconds))
  }

  wait (seconds: number) {
    this.now += seconds
    if (this.now - this.windowStart >= 86_400) {
      this.windowStart += 86_400 * Math.floor((this.now - this.windowStart) / 86_400)
      for (const t of this.tokens) this.counts.set(t, 0)
    }
  }
}

async function run (pool: TokenPool, model: Model, ops: Op[]): Promise<void> {
  let lastLeaseId = 0
  for (const o of ops) {
    if (o.kind === 'allocate') {
      const u = USERS[o.user]!
      const held = model.leaseOf(u)
      const free = model.free()
      const evictable = model.active()
      if (held === undefined && free.length === 0 && evictable.length === 0) {
        await assert.rejects(pool.allocate(u), { code: 'pool_exhausted' }, 'every token cooling or disabled')
        continue
      }
      const lease = await pool.allocate(u)
      if (held !== undefined) {
        assert.equal(lease.leaseId, held.leaseId, 'allocate again returns the same lease')
        assert.equal(lease.isNew, false)
        continue
      }
      assert.ok(lease.leaseId > lastLeaseId, 'lease ids grow')
      lastLeaseId = lease.leaseId
      if (free.length > 0) {
        const min = Math.min(...free.map((x) => model.counts.get(x)!))
        assert.ok(free.includes(lease.tokenId), 'takes a free token')
        assert.equal(model.counts.get(lease.tokenId), min, 'takes a least-used token')
        assert.equal(lease.evictedUserId, null)
      } else {
        const oldest = Math.min(...evictable.map((l) => l.startedAt))
        const victim = model.leases.get(lease.tokenId)
        assert.ok(victim !== undefined && victim.startedAt === oldest, 'evicts the oldest lease, never a cooling or disabled token')
        assert.equal(lease.evictedUserId, victim.user)
      }
      model.counts.set(lease.tokenId, model.counts.get(lease.tokenId)! + 1)
      model.leases.set(lease.tokenId, { user: u, token: lease.tokenId, leaseId: lease.leaseId, start: model.now, startedAt: lease.startedAt.getTime(), expires: model.now + TTL })
    } else if (o.kind === 'release' || o.kind === 'renew' || o.kind === 'cooldown') {
      const u = USERS[o.user]!
      const seconds = o.kind === 'cooldown' ? o.seconds : 0
      const held = model.leaseOf(u)
      const token = o.kind !== 'cooldown' && !o.ownToken ? model.tokens[o.user % SIZE]! : held?.token ?? model.tokens[o.user % SIZE]!
      if (held?.token !== token) {
        const call = o.kind === 'release' ? pool.release(token, u) : o.kind === 'renew' ? pool.renew(token, u) : pool.cooldown(token, u, seconds)
        await assert.rejects(call, { code: 'not_holder' })
      } else if (o.kind === 'release') {
        await pool.release(token, u)
        model.endLease(token)
      } else if (o.kind === 'renew') {
        const expires = Math.min(model.now + TTL, held.start + MAX)
        if (held.expires >= held.start + MAX) {
          await assert.rejects(pool.renew(token, u), { code: 'renewal_limit' })
        } else {
          const renewed = await pool.renew(token, u)
          assert.equal(renewed.leaseId, held.leaseId, 'a renewal keeps the lease')
          held.expires = Math.max(held.expires, expires)
        }
      } else {
        const { endedLease } = await pool.cooldown(token, u, seconds)
        assert.equal(endedLease?.leaseId, held.leaseId)
        model.cool(token, seconds)
      }
    } else if (o.kind === 'adminCooldown' || o.kind === 'disable' || o.kind === 'enable') {
      const token = model.tokens[o.token]!
      if (o.kind === 'enable') {
        await pool.enable(token)
        model.disabled.delete(token)
        model.coolingUntil.delete(token)
      } else if (o.kind === 'disable') {
        await pool.disable(token, 'model')
        model.endLease(token)
        model.disabled.add(token)
      } else if (model.disabled.has(token)) {
        await assert.rejects(pool.cooldown(token, null, o.seconds), { code: 'token_disabled' })
      } else {
        await pool.cooldown(token, null, o.seconds)
        model.cool(token, o.seconds)
      }
    } else if (o.kind === 'clear') {
      assert.equal(await pool.clear(), model.active().length)
      model.leases.clear()
    } else {
      await travel(pool.db, o.seconds)
      model.wait(o.seconds)
    }

    const { tokens, counts } = await pool.list()
    assert.equal(counts.active, model.active().length)
    assert.equal(counts.cooling, model.tokens.filter((x) => model.status(x) === 'cooling').length)
    assert.equal(counts.disabled, model.disabled.size)
    for (const tok of tokens) {
      const l = model.active().find((x) => x.token === tok.id)
      assert.equal(tok.status, model.status(tok.id), `status after ${o.kind}`)
      assert.equal(tok.activeUsage?.userId ?? null, l?.user ?? null)
      assert.equal(tok.usageCount, model.counts.get(tok.id))
    }
  }
  assert.deepEqual(await overlaps(pool.db), [])
}

describeEachBackend('the pool behaves like its model', (backend) => {
  test(`random sequences of every lease and health operation (seed ${SEED})`, async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
      const { db, dispose } = await scratchDb(backend)
      const pool = new TokenPool(db, { defaultPool: { size: SIZE, lease_ttl_seconds: TTL, lease_max_seconds: MAX, cooldown_max_seconds: 3600 }, sweepIntervalMs: 0 })
      try {
        await pool.start()
        await run(pool, new Model((await pool.list()).tokens.map((x) => x.id)), ops)
      } finally {
        await pool.stop()
        await dispose()
      }
    }), { numRuns: 25, seed: SEED })
  })
})
