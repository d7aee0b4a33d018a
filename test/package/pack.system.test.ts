import assert from 'node:assert/strict'
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { startServer } from '../helpers/server.js'
import { tempDir } from '../helpers/dirs.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const PORT = 4520

function run (cmd: string, args: string[], opts: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...opts })
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) }
}

const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd })

/** npm pack of the package in `dir` into `work`: the tarball's name and its files. */
function pack (dir: string, work: string): { filename: string, files: string[] } {
  const packed = npm(['pack', '--json', '--pack-destination', work], dir)
  assert.equal(packed.code, 0, packed.stderr)
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  return { filename: info!.filename, files: info!.files.map((f) => f.path) }
}

/** An empty project that installs the tarball as a user would; warnings are read (no EBADENGINE). */
function installInNewProject (work: string, tarball: string): string {
  const project = join(work, 'consumer')
  run('mkdir', [project])
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  // --prefer-offline: the dependencies usually come from npm's cache.
  const installed = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball)], { cwd: project })
  assert.equal(installed.code, 0, installed.stderr)
  assert.doesNotMatch(installed.stderr, /EBADENGINE/, 'every dependency supports Node 20')
  return project
}

// What a user does: npm pack (which builds), install the tarball in an empty project, use the bin and the client.
test('npm pack gives a package whose bin and typed client work from a clean directory', { timeout: 600_000 }, async (t) => {
  const work = tempDir(t, 'token-pool-pack-')

  const { filename, files } = pack(ROOT, work)
  for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'docs/api.md', 'package.json', 'dist/cli/main.js', 'dist/client/index.js', 'dist/client/index.d.ts',
    'dist/http/schemas/tokens.d.ts', 'migrations/0001.do.init.sql']) {
    assert.ok(files.includes(f), `the package has ${f}`)
  }
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('bench/')), 'no tests, sources or benchmarks')

  const project = installInNewProject(work, filename)
  assert.ok(readdirSync(join(project, 'node_modules/.bin')).includes('token-pool'))
  const bin = join(project, 'node_modules/.bin/token-pool')

  const help = run(bin, ['--help'], { cwd: project })
  assert.equal(help.code, 0, help.stderr)
  for (const name of ['serve', 'status', 'allocate', 'release', 'history', 'clear', 'stats']) assert.match(help.stdout, new RegExp(`^ {2}${name} `, 'm'))
  const version = run(bin, ['--version'], { cwd: project })
  assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version)

  // The installed service, started by its bin (migrations come from the package).
  const server = spawn(bin, ['serve'], {
    cwd: project,
    env: { ...process.env, DATABASE_URL: 'memory://', PORT: String(PORT), HOST: '127.0.0.1', POOL_SIZE: '3', ADMIN_TOKEN: 'sesame' },
    stdio: 'ignore',
  })
  const exited = new Promise((resolve) => server.once('exit', resolve))
  t.after(async () => {
    if (server.exitCode === null) server.kill('SIGTERM')
    await exited
  })
  const url = `http://127.0.0.1:${PORT}`
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url + '/readyz')).ok) break
    } catch {}
    assert.ok(i < 600 && server.exitCode === null, 'the installed server starts')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  const status = run(bin, ['status', '--url', url], { cwd: project })
  assert.equal(status.code, 0, status.stderr)
  assert.match(status.stdout, /^Pool default: 3 tokens: 0 active, 3 available, 0 cooling, 0 disabled, 0 waiting\./)

  // The client, imported by package name, in plain JavaScript…
  writeFileSync(join(project, 'use.mjs'), `
    import { TokenPoolClient, TokenPoolError } from 'token-pool'
    const client = new TokenPoolClient({ url: process.argv[2], adminToken: 'sesame' })
    const lease = await client.allocate('6f1c1a4e-3d2b-4f7a-9a53-2c1d0e9b8a71')
    let code
    try { await client.release(lease.token_id, '0b7e3c52-1f4d-4a8e-9c61-5d2a7b3e9f10') } catch (err) { code = err instanceof TokenPoolError && err.code }
    console.log(JSON.stringify({ user: lease.user_id, code, cleared: (await client.clear()).cleared_tokens }))
  `)
  const used = run(process.execPath, ['use.mjs', url], { cwd: project })
  assert.equal(used.code, 0, used.stderr)
  assert.deepEqual(JSON.parse(used.stdout), { user: '6f1c1a4e-3d2b-4f7a-9a53-2c1d0e9b8a71', code: 'not_holder', cleared: 1 })

  // …and in TypeScript, with full types: right uses compile, wrong ones don't.
  writeFileSync(join(project, 'typed.ts'), `
    import { TokenPoolClient, TokenPoolError, type Lease, type PoolEvent, type Usage } from 'token-pool'
    const client = new TokenPoolClient({ url: 'http://127.0.0.1:4000' })
    export async function use (): Promise<void> {
      const lease: Lease = await client.allocate('u')
      const fencing: number = lease.lease_id
      const evicted: string | null = lease.evicted_user_id
      const reason: 'expired' | 'evicted' | 'released' | 'cleared' | 'cooldown' | 'disabled' = (await client.release(lease.token_id, 'u')).release_reason
      const keyLease: Lease = await client.pool('openai-keys').allocate('u')
      const renewableUntil: string = keyLease.renewable_until
      for await (const usage of client.history(lease.token_id)) { const u: Usage = usage; void u.released_at }
      for await (const e of client.events()) { const ev: PoolEvent = e; if (ev.type === 'allocated') void ev.data.expires_in_seconds }
      const { tokens, meta } = await client.list({ status: 'active' })
      void [fencing, evicted, reason, renewableUntil, tokens[0]?.current_user_id, meta.window_resets_at, (await client.stats()).usage_count.mean]
      try { await client.get('x') } catch (err) { if (err instanceof TokenPoolError) { const s: number = err.status; void [s, err.code, err.retryAfterSeconds] } }
      // @ts-expect-error lease ids are numbers
      const wrong: string = lease.lease_id
      // @ts-expect-error there is no such status
      await client.list({ status: 'busy' })
      void wrong
    }
  `)
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2023', 'DOM'], noEmit: true, types: [] },
    files: ['typed.ts'],
  }))
  const typed = run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: project })
  assert.equal(typed.code, 0, typed.stdout + typed.stderr)
})

// The client alone, as a user who only calls a running service installs it: no server dependencies.
test('the client-only package installs without the service and works against one', { timeout: 600_000 }, async (t) => {
  const work = tempDir(t, 'token-pool-client-')

  const { filename, files } = pack(join(ROOT, 'client'), work)
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/client/index.js', 'dist/client/index.d.ts']) assert.ok(files.includes(f), `the package has ${f}`)
  const versionOf = (dir: string): string => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version
  assert.equal(versionOf(join(ROOT, 'client')), versionOf(ROOT), 'the client is released with the service, under its version')
  assert.ok(!files.some((f) => f.startsWith('dist/store/') || f.startsWith('dist/http/routes/') || f.startsWith('dist/pool/')), 'none of the service')

  const project = installInNewProject(work, filename)
  // The client and the schema library its types are written in; nothing else.
  assert.deepEqual(readdirSync(join(project, 'node_modules')).filter((d) => !d.startsWith('.')).sort(), ['token-pool-client', 'typebox'])

  const server = await startServer({ DATABASE_URL: 'memory://', POOL_SIZE: '2' })
  t.after(async () => { server.child.kill('SIGTERM'); await server.exited })
  writeFileSync(join(project, 'use.mjs'), `
    import { TokenPoolClient, TokenPoolError } from 'token-pool-client'
    const client = new TokenPoolClient({ url: process.argv[2] })
    const lease = await client.allocate('6f1c1a4e-3d2b-4f7a-9a53-2c1d0e9b8a71')
    let code
    try { await client.release(lease.token_id, '0b7e3c52-1f4d-4a8e-9c61-5d2a7b3e9f10') } catch (err) { code = err instanceof TokenPoolError && err.code }
    console.log(JSON.stringify({ user: lease.user_id, code, active: (await client.stats()).active }))
  `)
  const used = run(process.execPath, ['use.mjs', server.url], { cwd: project })
  assert.equal(used.code, 0, used.stderr)
  assert.deepEqual(JSON.parse(used.stdout), { user: '6f1c1a4e-3d2b-4f7a-9a53-2c1d0e9b8a71', code: 'not_holder', active: 1 })

  writeFileSync(join(project, 'typed.ts'), `
    import { TokenPoolClient, type Lease } from 'token-pool-client'
    export async function use (client: TokenPoolClient): Promise<number> {
      const lease: Lease = await client.pool('keys').allocate('u', { wait: 5 })
      // @ts-expect-error lease ids are numbers
      const wrong: string = lease.lease_id
      void wrong
      return lease.lease_id
    }
  `)
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2023', 'DOM'], noEmit: true, types: [] },
    files: ['typed.ts'],
  }))
  const typed = run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: project })
  assert.equal(typed.code, 0, typed.stdout + typed.stderr)
})
