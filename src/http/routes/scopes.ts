import { Type } from 'typebox'
import { parseId, type Id } from '../../domain/ids.js'
import { DEFAULT_POOL } from '../../domain/types.js'
import { Uuid } from '../schemas/common.js'
import { PoolNameParams } from '../schemas/pools.js'

/**
 * A pool route lives under /api/pools/:pool/…; the v0.1 form without /pools/:pool is the
 * default pool's (allocate, list, stats, clear, export), or, for the routes of one token,
 * whichever pool holds it.
 */
export const POOL_PREFIX = '/api/pools/:pool'

export const TokenInPoolParams = Type.Object({ ...PoolNameParams.properties, token_id: Uuid('a token of the pool') })
export const TokenParams = Type.Object({ token_id: Uuid('a token of any pool') })

/** The pool a request names, the default pool when it names none. */
export const poolOf = (params: unknown): string => (params as { pool?: string }).pool ?? DEFAULT_POOL

/** The pool a token route is confined to: the named one, or any (undefined). */
export const scopeOf = (params: unknown): string | undefined => (params as { pool?: string }).pool

/** The token a route names, in its one spelling (the schema checked it is a UUID). */
export const tokenIdOf = (params: unknown): Id => parseId((params as { token_id: string }).token_id, 'token_id')
