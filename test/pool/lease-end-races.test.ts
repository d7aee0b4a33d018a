import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { build } from '../helpers/app.js'
import { describeMultiConnection, heldSession, someoneWaitsOn } from '../helpers/db.js'
import { until } from '../helpers/until.js'

// A batch of releases or renewals locks its tokens, then ends or extends their leases. The
// sweep (or an allocation) may end one of those leases in between: it writes the usage
// without the token's lock. Forced here by holding that write open until the batch waits on it.
describeMultiConnection('a lease that runs out while its release or renewal is in the database', () => {
  for (const op of ['release', 'renew'] as const) {
    test(`${op}: not_holder, and the other requests of the batch are answered`, async (t) => {
      const { pool, db } = await build(t, 'postgres', { poolSize: 3, leaseMaxSeconds: 3600 })
      const [a, b] = [newId(), newId()]
      const racing = await pool.allocate(a)
      const other = await pool.allocate(b)
      const lock = heldSession(db)
      const s = await lock.s
      await s.query('BEGIN')
      await s.query('UPDATE usages SET released_at = expires_at, release_reason = \'expired\' WHERE id = $1', [racing.leaseId])
      const call = (tokenId: typeof racing.tokenId, user: typeof a) =>
        (op === 'release' ? pool.release(tokenId, user) : pool.renew(tokenId, user)).then((l) => l.leaseId, (err: { code?: string }) => err.code)
      const answers = Promise.all([call(racing.tokenId, a), call(other.tokenId, b)])
      await until(async () => await someoneWaitsOn(db, s), 'the batch waits on the usage')
      await s.query('COMMIT')
      await lock.end()
      assert.deepEqual(await answers, ['not_holder', other.leaseId])
    })
  }
})
