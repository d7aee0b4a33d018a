import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'

/** Polls `what` every 10 ms until it holds; fails naming `label` after `tries` looks. */
export async function until (what: () => boolean | Promise<boolean>, label: string, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await what()) return
    await sleep(10)
  }
  assert.fail(`never happened: ${label}`)
}
