import assert from 'node:assert/strict'
import { test } from 'node:test'
import { table } from '../../src/cli/remote.js'

test('a table pads each column to its widest cell, whatever the number of rows', () => {
  assert.equal(table(['ID', 'STATUS', 'USES'], [['a', 'available', '1'], ['bbb', 'active', '22']]),
    'ID   STATUS     USES\na    available  1\nbbb  active     22\n')
  // A pool's status lists up to 1,000,000 tokens (a spread of one column overflowed the stack).
  const rows = Array.from({ length: 300_000 }, (_, i) => [String(i), 'available', '0'])
  const lines = table(['TOKEN', 'STATUS', 'USES'], rows).split('\n')
  assert.equal(lines.length, 300_002)
  assert.equal(lines[1], '0       available  0')
})
