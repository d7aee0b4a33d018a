import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CommitHint } from '../../src/pool/commit-hint.js'

test('pokes during a hint in flight fold into one more hint', async () => {
  const releases: Array<() => void> = []
  let sent = 0
  const hint = new CommitHint(async () => {
    sent++
    await new Promise<void>((resolve) => releases.push(resolve))
  })
  hint.poke()
  hint.poke()
  hint.poke()
  hint.poke()
  assert.equal(sent, 1)
  releases.shift()?.()
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(sent, 2)
  releases.shift()?.()
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(sent, 2, 'nothing more was poked')
})

test('a failed hint does not stop later ones', async () => {
  let sent = 0
  const hint = new CommitHint(async () => {
    sent++
    throw new Error('database away')
  })
  hint.poke()
  await new Promise((resolve) => setImmediate(resolve))
  hint.poke()
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(sent, 2)
})
