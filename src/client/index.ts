/**
 * The package's entry point: a typed client for a running Token Pool.
 *   import { TokenPoolClient } from 'token-pool'
 */
export {
  PoolHandle, TokenPoolClient, TokenPoolScope,
  type AllocateOptions, type CallOptions, type ClientOptions, type CooldownOptions, type EventsOptions, type ExportQuery, type KeepAlive,
  type KeepAliveOptions, type ListPageOptions, type QueueState, type StatsOptions, type TokenPage,
} from './client.js'
export { TokenPoolError, TokenPoolUnreachableError } from './errors.js'
export type * from './types.js'
