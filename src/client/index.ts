/**
 * The package's entry point: a typed client for a running Token Pool.
 *   import { TokenPoolClient } from 'token-pool'
 */
export { TokenPoolClient, type CallOptions, type ClientOptions, type EventsOptions } from './client.js'
export { TokenPoolError, TokenPoolUnreachableError } from './errors.js'
export type * from './types.js'
