import assert from 'node:assert/strict'
import { test } from 'node:test'
import { newId, parseId } from '../../src/domain/ids.js'

test('an id is parsed once into its one spelling: lower case', () => {
  const id = newId()
  assert.equal(parseId(id.toUpperCase(), 'user_id'), id)
  assert.equal(parseId(id, 'user_id'), id)
})

test('anything but a plain UUID is validation_failed naming the input', () => {
  for (const bad of ['', 'abc', `urn:uuid:${newId()}`, `${newId()} `, newId().replaceAll('-', '')]) {
    assert.throws(() => parseId(bad, 'token_id'), (err: { code: string, details: { field: string } }) =>
      err.code === 'validation_failed' && err.details.field === 'token_id', bad)
  }
})
