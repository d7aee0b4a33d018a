import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { TokenPoolClient, TokenPoolError, TokenPoolUnreachableError } from '../../src/client/index.js'

// A connection that closes before any answer (a kept-alive socket the server dropped while
// the caller's process was paused) is asked once more; a second failure is the caller's.

async function flaky (t: TestContext, closeFirst: number): Promise<{ url: string, seen: () => number }> {
  let seen = 0
  const server: Server = createServer((req, res) => {
    seen++
    if (seen <= closeFirst) {
      req.socket.destroy()
      return
    }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ data: { name: 'keys' } }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen: () => seen }
}

test('a connection closed before any answer is asked again once, on a new connection', async (t) => {
  const s = await flaky(t, 1)
  const client = new TokenPoolClient({ url: s.url })
  assert.equal((await client.getPool('keys')).name, 'keys')
  assert.equal(s.seen(), 2)
})

test('closed twice: TokenPoolUnreachableError, after exactly two tries', async (t) => {
  const s = await flaky(t, 2)
  const client = new TokenPoolClient({ url: s.url })
  await assert.rejects(client.getPool('keys'), TokenPoolUnreachableError)
  assert.equal(s.seen(), 2)
})

test('an export whose connection breaks mid-body is cut short (unexpected_response), not unreachable', async (t) => {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    res.write('{"pool":"keys","token_id":"t","lease_id":1}\n{"pool":"ke')
    setTimeout(() => { res.socket?.destroy() }, 20)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.close() })
  const client = new TokenPoolClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })
  const rows: unknown[] = []
  await assert.rejects((async () => { for await (const row of client.pool('keys').export()) rows.push(row) })(),
    (err: unknown) => err instanceof TokenPoolError && err.code === 'unexpected_response' && /cut short/.test(err.message))
  assert.equal(rows.length, 1, 'the whole row before the break was given')
})
