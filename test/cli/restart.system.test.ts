import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { test } from 'node:test'
import { describeEachBackend, postgresUrlFor, testDb } from '../helpers/db.js'
import { postJson, startServer } from '../helpers/server.js'
import { tempDir } from '../helpers/dirs.js'

const getJson = async (url: string): Promise<any> => await (await fetch(url)).json()

describeEachBackend('a process killed with SIGKILL and started again', (backend) => {
  test('loses no acknowledged lease, leaves no token stuck, and shows leases that ran out meanwhile as expired', async (t) => {
    let databaseUrl: string
    if (backend === 'postgres') {
      const db = await testDb(t, 'postgres')
      const [row] = await db.query<{ schema: string }>('SELECT current_schema() AS schema')
      databaseUrl = postgresUrlFor(row!.schema)
    } else {
      const dir = tempDir(t, 'token-pool-')
      databaseUrl = pathToFileURL(dir).toString()
    }
    // One second leases: they run out while the process is down (the one test that lets real time pass).
    const env = { DATABASE_URL: databaseUrl, POOL_SIZE: '4', LEASE_TTL_SECONDS: '1' }

    const first = await startServer(env)
    const acknowledged = await Promise.all(Array.from({ length: 6 }, async () => {
      const res = await postJson(`${first.url}/api/tokens/allocate`, { user_id: randomUUID() })
      assert.equal(res.status, 200)
      return res.body.data
    }))
    const ids = (await getJson(`${first.url}/api/tokens`)).data.map((x: { id: string }) => x.id)
    first.child.kill('SIGKILL')
    assert.equal(await first.exited, 'SIGKILL')

    const second = await startServer(env)
    t.after(() => { second.child.kill('SIGKILL') })
    const list = await getJson(`${second.url}/api/tokens`)
    assert.deepEqual(list.data.map((x: { id: string }) => x.id), ids, 'same ids after the restart')
    assert.equal(list.meta.active, 0, 'no token stuck: every lease ran out while down')

    for (const lease of acknowledged) {
      const history = (await getJson(`${second.url}/api/tokens/${lease.token_id}/history?limit=500`)).data.usages
      const usage = history.find((u: { user_id: string }) => u.user_id === lease.user_id)
      assert.ok(usage, `acknowledged lease of ${lease.user_id} survived`)
      assert.equal(usage.started_at, lease.started_at)
      if (usage.release_reason === 'expired') assert.equal(usage.released_at, lease.expires_at)
      else assert.equal(usage.release_reason, 'evicted')
    }
    const fresh = await postJson(`${second.url}/api/tokens/allocate`, { user_id: randomUUID() })
    assert.equal(fresh.status, 200)
    assert.equal(fresh.body.data.evicted_user_id, null)
  })
})
