import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { TokenPool } from '../../src/pool/pool.js'
import { travel } from '../helpers/app.js'
import { describeEachBackend, testDb } from '../helpers/db.js'

/**
 * Random sequences of allocate, release, clear and time passing, checked step by
 * step against a small in-memory model of the contract's rules.
 */
const USERS = ['a', 'b', 'c', 'd', 'e'].map((c) => `00000000-0000-4000-8000-${c.repeat(12)}`)
const SIZE = 3
const TTL = 120

type Op =
  | { kind: 'allocate', user: number }
  | { kind: 'release', user: number, ownToken: boolean }
  | { kind: 'clear' }
  | { kind: 'wait', seconds: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('allocate' as const), user: fc.nat(USERS.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), user: fc.nat(USERS.length - 1), ownToken: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
  // Steps of 50 s keep every check clear of the 120 s boundary, whatever real time passes meanwhile.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('wait' as const), seconds: fc.constantFrom(50, 100, 150, 86_400) }) }
)

interface ModelLease { user: string, token: string, leaseId: number, start: number, expires: number }

class Model {
  now = 0
  windowStart = 0
  counts = new Map<string, number>()
  leases = new Map<string, ModelLease>() // by token
  constructor (readonly tokens: string[]) { for (const t of tokens) this.counts.set(t, 0) }

  active (): ModelLease[] { return [...this.leases.values()].filter((l) => l.expires > this.now) }
  leaseOf (user: string) { return this.active().find((l) => l.user === user) }
  free () { return this.tokens.filter((t) => !this.active().some((l) => l.token === t)) }
  wait (seconds: number) {
    this.now += seconds
    if (this.now - this.windowStart >= 86_400) {
      this.windowStart += 86_400 * Math.floor((this.now - this.windowStart) / 86_400)
      for (const t of this.tokens) this.counts.set(t, 0)
    }
  }
}

describeEachBackend('the pool behaves like its model', (backend) => {
  test('random allocate / release / clear / wait sequences', async (t) => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
      await t.test('run', async (tt) => {
        const db = await testDb(tt, backend)
        const pool = new TokenPool(db, { defaultPool: { size: SIZE, lease_ttl_seconds: TTL }, sweepIntervalMs: 0 })
        await pool.start()
        const model = new Model((await pool.list()).tokens.map((x) => x.id))
        let lastLeaseId = 0

        for (const o of ops) {
          if (o.kind === 'allocate') {
            const user = USERS[o.user]!
            const held = model.leaseOf(user)
            const free = model.free()
            const lease = await pool.allocate(user)
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
              const oldest = Math.min(...model.active().map((l) => l.start))
              const victim = model.leases.get(lease.tokenId)
              assert.ok(victim !== undefined && victim.start === oldest, 'evicts the oldest lease')
              assert.equal(lease.evictedUserId, victim.user)
            }
            model.counts.set(lease.tokenId, model.counts.get(lease.tokenId)! + 1)
            model.leases.set(lease.tokenId, { user, token: lease.tokenId, leaseId: lease.leaseId, start: lease.startedAt.getTime(), expires: model.now + TTL })
          } else if (o.kind === 'release') {
            const user = USERS[o.user]!
            const held = model.leaseOf(user)
            const token = o.ownToken && held !== undefined ? held.token : model.tokens[o.user % SIZE]!
            const holds = held?.token === token
            if (holds) {
              await pool.release(token, user)
              model.leases.delete(token)
            } else {
              await assert.rejects(pool.release(token, user), { code: 'not_holder' })
            }
          } else if (o.kind === 'clear') {
            assert.equal(await pool.clear(), model.active().length)
            model.leases.clear()
          } else {
            await travel(db, o.seconds)
            model.wait(o.seconds)
          }

          const { tokens, counts } = await pool.list()
          assert.equal(counts.active, model.active().length)
          for (const tok of tokens) {
            const l = model.active().find((x) => x.token === tok.id)
            assert.equal(tok.status, l === undefined ? 'available' : 'active')
            assert.equal(tok.activeUsage?.userId ?? null, l?.user ?? null)
            assert.equal(tok.usageCount, model.counts.get(tok.id))
          }
        }
        const [{ n }] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM usages a JOIN usages b ON a.token_id = b.token_id AND a.id < b.id
          AND tstzrange(a.started_at, coalesce(a.released_at, a.expires_at)) && tstzrange(b.started_at, coalesce(b.released_at, b.expires_at))`) as [{ n: number }]
        assert.equal(n, 0)
      })
    }), { numRuns: 20 })
  })
})
