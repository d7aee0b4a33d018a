/**
 * The package's entry point: a typed client for a running Token Pool.
 *   import { TokenPoolClient } from 'token-pool'
 */
export { PoolHandle, TokenPoolClient } from './client.js'
export { TokenPoolScope } from './scope.js'
export type { KeepAlive, KeepAliveOptions } from './keep-alive.js'
export type {
  AllocateOptions, CallOptions, ClientOptions, CooldownOptions, EventsOptions, ExportQuery, ListPageOptions, QueueState, StatsOptions, TokenPage,
} from './options.js'
export { TokenPoolError, TokenPoolUnreachableError } from './errors.js'
export type * from './types.js'
