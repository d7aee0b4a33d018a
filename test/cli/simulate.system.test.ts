import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

/** Runs `token-pool simulate …` as a real subprocess, with stdout and stderr piped (not a terminal). */
async function simulate (args: string[], stdin?: string): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'simulate', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  if (stdin !== undefined) child.stdin.write(stdin)
  child.stdin.end()
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

/** token number → count, from the "Token Usage Statistics:" block. */
function countsOf (stdout: string): number[] {
  const block = stdout.split('Token Usage Statistics:\n')[1]!.split('Least Used Token(s):')[0]!
  return block.trim().split('\n').map((line, i) => {
    const m = /^Token (\d+): (\d+) (use|uses)$/.exec(line)
    assert.ok(m, `bad line ${JSON.stringify(line)}`)
    assert.equal(Number(m[1]), i + 1)
    assert.equal(m[3], Number(m[2]) === 1 ? 'use' : 'uses')
    return Number(m[2])
  })
}

describe('token-pool simulate', () => {
  test('prints the contract format: header, every token, the least used, a summary; nothing on stderr when piped', async () => {
    const { code, stdout, stderr } = await simulate(['10', '--tokens', '12', '--seed', '5'])
    assert.equal(code, 0, stderr)
    assert.equal(stderr, '', 'no progress bar when stderr is not a terminal')
    const lines = stdout.split('\n')
    assert.deepEqual(lines.slice(0, 3), ['Starting simulation with 10 operations...', '', 'Token Usage Statistics:'])
    const counts = countsOf(stdout)
    assert.equal(counts.length, 12)
    assert.equal(counts.reduce((a, b) => a + b, 0), 10)
    assert.deepEqual([...new Set(counts)].sort(), [0, 1])
    const zero = counts.flatMap((c, i) => (c === 0 ? [`Token ${i + 1} (0 uses)`] : []))
    assert.equal(zero.length, 2)
    const least = stdout.split('Least Used Token(s):\n')[1]!.split('\n\n')[0]!.split('\n')
    assert.deepEqual(least, zero)
    assert.match(stdout, /\nSummary: 10 operations over 12 tokens \(seed 5\): min 0, max 1, mean 0\.83, spread 1\n$/)
  })

  test('"1 use" and "N uses" once every token is used', async () => {
    const { code, stdout } = await simulate(['6', '--tokens', '3', '--seed', '1'])
    assert.equal(code, 0)
    assert.match(stdout, /\nToken 1: 2 uses\nToken 2: 2 uses\nToken 3: 2 uses\nLeast Used Token\(s\):\nToken 1 \(2 uses\)\nToken 2 \(2 uses\)\nToken 3 \(2 uses\)\n/)
    const one = await simulate(['1', '--tokens', '1'])
    assert.match(one.stdout, /\nToken 1: 1 use\nLeast Used Token\(s\):\nToken 1 \(1 use\)\n/)
  })

  test('defaults to 1000 tokens', async () => {
    const { code, stdout } = await simulate(['3', '--seed', '2'])
    assert.equal(code, 0)
    const counts = countsOf(stdout)
    assert.equal(counts.length, 1000)
    assert.equal(counts.filter((c) => c === 1).length, 3)
  })

  test('asks for the number on stdin when it is not given', async () => {
    const { code, stdout, stderr } = await simulate(['--tokens', '4', '--seed', '3'], '7\n')
    assert.equal(code, 0, stderr)
    assert.ok(stdout.startsWith('Enter number of operations to simulate:'), stdout)
    assert.match(stdout, /\nStarting simulation with 7 operations\.\.\.\n/)
    assert.deepEqual(countsOf(stdout).sort(), [1, 2, 2, 2])
  })

  for (const [answer, why] of [['abc\n', /whole number, got "abc"/], ['-3\n', /whole number, got "-3"/], ['1.5\n', /whole number/], ['\n', /whole number, got ""/], ['', /no number of operations given/]] as const) {
    test(`rejects the answer ${JSON.stringify(answer)} with a clear message and exit code 2`, async () => {
      const { code, stdout, stderr } = await simulate(['--tokens', '4'], answer)
      assert.equal(code, 2)
      assert.match(stderr, why)
      assert.match(stderr, /^token-pool simulate: /)
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace')
      assert.doesNotMatch(stdout, /Starting simulation/)
    })
  }

  test('rejects bad arguments and options', async () => {
    for (const args of [['ten'], ['5', '--tokens', '0'], ['5', '--tokens', 'x'], ['5', '--seed', 'abc'], ['1', '2'], ['5', '--nope']]) {
      const { code, stderr, stdout } = await simulate(args)
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`)
      assert.match(stderr, /^token-pool simulate: \S/, args.join(' '))
      assert.equal(stdout, '')
    }
  })

  test('--seed makes a run reproducible', async () => {
    const a = await simulate(['50', '--tokens', '1000', '--seed', '1234'])
    const b = await simulate(['50', '--tokens', '1000', '--seed', '1234'])
    const c = await simulate(['50', '--tokens', '1000', '--seed', '4321'])
    assert.equal(a.stdout, b.stdout)
    assert.notEqual(a.stdout, c.stdout)
  })

  test('--json prints the result as one JSON document', async () => {
    const { code, stdout } = await simulate(['25', '--tokens', '10', '--seed', '9', '--json'])
    assert.equal(code, 0)
    const result = JSON.parse(stdout)
    assert.equal(result.operations, 25)
    assert.equal(result.tokens, 10)
    assert.equal(result.seed, 9)
    assert.equal(result.counts.length, 10)
    assert.equal(result.counts.reduce((a: number, b: number) => a + b, 0), 25)
    assert.deepEqual(result.summary, { min: 2, max: 3, mean: 2.5, spread: 1 })
    assert.deepEqual(result.least_used, result.counts.flatMap((c: number, i: number) => (c === 2 ? [i + 1] : [])))
  })

  test('on a terminal, a progress bar goes to stderr and the report stays clean', { skip: !existsSync('/usr/bin/script') && 'needs script(1) for a pseudo-terminal' }, () => {
    // script(1) gives the command a pseudo-terminal; stdout goes to a file, so only stderr is the terminal's.
    const out = join(tmpdir(), `token-pool-simulate-${process.pid}.out`)
    const run = spawnSync('/usr/bin/script', ['-qec', `"${process.execPath}" --import tsx "${MAIN}" simulate 200000 --tokens 10 --seed 1 > ${out}`, '/dev/null'], { encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, /\[#+\] 100%/)
    assert.match(run.stdout, /Simulated 200000 operations in \d+ ms/)
    const report = readFileSync(out, 'utf8')
    rmSync(out, { force: true })
    assert.ok(report.startsWith('Starting simulation with 200000 operations...\n'))
    assert.doesNotMatch(report, /%|\r/)
  })

  test('one million operations over 1,000 tokens leave every token used exactly 1,000 times', async () => {
    const { code, stdout } = await simulate(['1000000', '--tokens', '1000', '--json'])
    assert.equal(code, 0)
    const result = JSON.parse(stdout)
    assert.deepEqual(result.summary, { min: 1000, max: 1000, mean: 1000, spread: 0 })
    assert.equal(result.least_used.length, 1000)
  })
})
