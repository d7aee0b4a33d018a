import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { startServer } from './helpers/server.js'

const lines = (out: string) => out.split('\n').filter((l) => l.trim() !== '')

const post = async (url: string, body: unknown, headers: Record<string, string> = {}) =>
  await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

/** Waits (by polling the output, not a fixed sleep) until a log line matches. */
async function logged (output: () => string, match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const found = lines(output()).map((l) => JSON.parse(l) as Record<string, unknown>).find(match)
    if (found !== undefined) return found
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no such log line in:\n${output()}`)
}

test('piped (not a terminal): JSON lines; one per request with the incoming x-request-id echoed; lease events at info with ids only', async (t) => {
  const server = await startServer(4511)
  t.after(server.stop)
  const user = randomUUID()
  const res = await post(server.url + '/api/tokens/allocate', { user_id: user }, { 'x-request-id': 'trace-abc-123' })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('x-request-id'), 'trace-abc-123')
  const lease = ((await res.json()) as { data: { token_id: string, lease_id: number } }).data

  const request = await logged(server.output, (l) => l.reqId === 'trace-abc-123')
  assert.equal(request.msg, 'request')
  assert.equal(request.level, 30)
  assert.equal(request.method, 'POST')
  assert.equal(request.url, '/api/tokens/allocate')
  assert.equal(request.status, 200)
  assert.equal(typeof request.ms, 'number')

  const allocated = await logged(server.output, (l) => l.event === 'allocated')
  assert.deepEqual(
    { level: allocated.level, token_id: allocated.token_id, user_id: allocated.user_id, lease_id: allocated.lease_id },
    { level: 30, token_id: lease.token_id, user_id: user, lease_id: lease.lease_id })

  const released = await post(`${server.url}/api/tokens/${lease.token_id}/release`, { user_id: user })
  assert.equal(released.status, 200)
  const ended = await logged(server.output, (l) => l.event === 'released')
  assert.equal(ended.release_reason, 'released')

  // A request without an id gets a fresh UUID, in the answer and in the log.
  const anon = await fetch(server.url + '/healthz')
  const id = anon.headers.get('x-request-id') ?? ''
  assert.match(id, /^[0-9a-f-]{36}$/)
  await logged(server.output, (l) => l.reqId === id)

  // Every line is JSON, and no line carries a body or headers (user data beyond ids).
  for (const line of lines(server.output())) {
    const entry = JSON.parse(line) as Record<string, unknown>
    assert.ok(!('req' in entry) && !('res' in entry) && !('body' in entry) && !('headers' in entry), line)
  }
})

test('LOG_LEVEL=warn leaves out the request and lease lines', async (t) => {
  // With ADMIN_TOKEN set there is no start-up warning about admin routes, so any line here is one too many.
  const server = await startServer(4512, { LOG_LEVEL: 'warn', ADMIN_TOKEN: 'sesame' })
  t.after(server.stop)
  const res = await post(server.url + '/api/tokens/allocate', { user_id: randomUUID() }, { 'x-request-id': 'quiet-1' })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('x-request-id'), 'quiet-1')
  // The server logs synchronously to a pipe; a later request's answer means the earlier lines were written.
  await fetch(server.url + '/healthz')
  assert.deepEqual(lines(server.output()), [])
})

test('without ADMIN_TOKEN the start says, as a warning, that admin routes answer this machine only', async (t) => {
  const server = await startServer(4514, { LOG_LEVEL: 'warn' })
  t.after(server.stop)
  await fetch(server.url + '/healthz')
  const warned = lines(server.output()).map((l) => JSON.parse(l) as { level: number, msg: string })
  assert.equal(warned.length, 1)
  assert.equal(warned[0]!.level, 40)
  assert.match(warned[0]!.msg, /^ADMIN_TOKEN is not set: admin routes .* answer only clients on this machine \(loopback\)/)
})

test('in a terminal (a pty from script(1)): readable lines, not JSON', async (t) => {
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`
  const server = await startServer(4513, {}, (argv) => ['script', '-qfec', argv.map(quote).join(' '), '/dev/null'])
  t.after(server.stop)
  const res = await fetch(server.url + '/healthz', { headers: { 'x-request-id': 'pretty-7' } })
  assert.equal(res.status, 200)
  for (let i = 0; i < 200 && !server.output().includes('pretty-7'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  // eslint-disable-next-line no-control-regex
  const out = server.output().replace(/\x1b\[[0-9;]*m/g, '')
  // pino-pretty: a header line, then the fields indented below it.
  assert.match(out, /\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): request\r?\n\s+reqId: "pretty-7"/)
  assert.ok(!lines(out).some((l) => l.trimStart().startsWith('{"level"')), out)
})
