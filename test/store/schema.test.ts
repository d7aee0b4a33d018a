import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { build } from '../helpers/app.js'
import { describeEachBackend } from '../helpers/db.js'
import type { Db } from '../../src/store/db.js'

const SNAPSHOT = new URL('./schema.snapshot.txt', import.meta.url)

/** The schema as text: tables and columns, constraints, indexes, functions. Stable across backends. */
async function describeSchema (db: Db): Promise<string> {
  const lines = await db.query<{ line: string }>(`
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END AS line
      FROM information_schema.columns WHERE table_schema = current_schema()
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ': ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace = current_schema()::regnamespace AND contype <> 'n' -- NOT NULL is a constraint row only in newer PostgreSQL (PGlite)
    UNION ALL
    SELECT 'index ' || indexname || ': ' || regexp_replace(indexdef, ' ON [a-z_0-9]+\\.', ' ON ')
      FROM pg_indexes WHERE schemaname = current_schema()
    UNION ALL
    SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
      FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
    UNION ALL
    SELECT 'trigger ' || event_object_table || ' ' || trigger_name || ' ' || action_timing || ' ' || event_manipulation
      FROM information_schema.triggers WHERE trigger_schema = current_schema()
    ORDER BY 1`)
  return lines.map((l) => l.line).join('\n') + '\n'
}

describeEachBackend('the schema', (backend) => {
  test('is what the migrations are known to make (UPDATE_SCHEMA_SNAPSHOT=1 writes it after a deliberate change)', async (t) => {
    const { db } = await build(t, backend)
    const actual = await describeSchema(db)
    if (process.env.UPDATE_SCHEMA_SNAPSHOT === '1') writeFileSync(SNAPSHOT, actual)
    assert.equal(actual, readFileSync(SNAPSHOT, 'utf8'))
  })

  test('the database itself refuses two holders of one token (23P01, 23505) and two open leases of one user in a pool (23505)', async (t) => {
    const { db, pool } = await build(t, backend, { poolSize: 2 })
    const lease = await pool.allocate(newId())
    const other = (await pool.list()).tokens.find((x) => x.id !== lease.tokenId)!
    const insert = async (token: string, user: string, startOffset: string, released: boolean) => await db.query(
      `INSERT INTO usages (pool, token_id, user_id, started_at, expires_at, released_at, release_reason)
       VALUES ('default', $1, $2, now() + $3::interval, now() + $3::interval + interval '1 minute',
               CASE WHEN $4 THEN now() + $3::interval + interval '1 second' END, CASE WHEN $4 THEN 'released' END)`,
      [token, user, startOffset, released])
    // A closed usage that overlaps the open one on the same token: only the exclusion constraint stops it.
    await assert.rejects(insert(lease.tokenId, newId(), '1 second', true), { code: '23P01' })
    // A second open usage of the token: the unique index (or the exclusion constraint) stops it.
    await assert.rejects(insert(lease.tokenId, newId(), '1 hour', false), (err: { code: string }) => ['23505', '23P01'].includes(err.code))
    // The same user open twice in one pool, on another token.
    await assert.rejects(insert(other.id, lease.userId, '0 seconds', false), { code: '23505' })
    // The same user may hold a lease in another pool.
    await pool.createPool('other', { size: 1 })
    await pool.allocate(lease.userId, 'other')
  })
})
