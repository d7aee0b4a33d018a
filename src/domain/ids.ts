import { randomUUID } from 'node:crypto'
import { PoolError } from './errors.js'

/** A UUID as users may write it (either case); stored and compared in lower case. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
const UUID = new RegExp(UUID_PATTERN)

declare const idBrand: unique symbol
/**
 * A token or user id in its one spelling: a UUID in lower case, as PostgreSQL writes it.
 * Only parseId (at the edges: a request, a caller of the pool) and the database make one,
 * so two spellings of one id can't reach the batcher, the waiting room or a comparison.
 */
export type Id = string & { readonly [idBrand]: true }

/** The id `text` names, for the input called `field`; validation_failed when it is no UUID. */
export function parseId (text: string, field: string): Id {
  if (!UUID.test(text)) {
    throw new PoolError('validation_failed', `${field} must be a UUID`, {
      details: { field, issues: [{ field, message: 'must be a UUID' }] },
    })
  }
  return text.toLowerCase() as Id
}

/** A fresh random id (randomUUID writes lower case: already its one spelling). */
export const newId = (): Id => randomUUID() as Id
