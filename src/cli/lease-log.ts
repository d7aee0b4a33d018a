import type { Logger } from 'pino'
import type { PoolEvent } from '../pool/context.js'
import type { TokenPool } from '../pool/pool.js'

/** Logs each lease event of this process at info: ids, reasons and times, nothing else about the user. */
export function logLeaseEvents (pool: TokenPool, logger: Logger): void {
  const log = logger.child({ component: 'pool' })
  pool.on('change', (event: PoolEvent) => {
    switch (event.type) {
      case 'allocated': {
        const { pool: name, tokenId, userId, leaseId, expiresAt, evictedUserId } = event.lease
        log.info({ event: 'allocated', pool: name, token_id: tokenId, user_id: userId, lease_id: leaseId, expires_at: expiresAt, evicted_user_id: evictedUserId ?? undefined },
          evictedUserId === null ? 'lease allocated' : 'lease allocated by eviction')
        break
      }
      case 'renewed': {
        const { pool: name, tokenId, userId, leaseId, expiresAt } = event.lease
        log.info({ event: 'renewed', pool: name, token_id: tokenId, user_id: userId, lease_id: leaseId, expires_at: expiresAt }, 'lease renewed')
        break
      }
      case 'released':
      case 'cleared': {
        const { pool: name, tokenId, userId, leaseId, releaseReason } = event.lease
        log.info({ event: event.type, pool: name, token_id: tokenId, user_id: userId, lease_id: leaseId, release_reason: releaseReason }, `lease ended (${releaseReason})`)
        break
      }
      case 'cooling':
      case 'disabled':
      case 'enabled': {
        const { pool: name, id, coolingUntil, disabledReason } = event.token
        log.info({ event: event.type, pool: name, token_id: id, cooling_until: coolingUntil ?? undefined, disabled_reason: disabledReason ?? undefined }, `token ${event.type}`)
        break
      }
      case 'pool_changed':
        log.info({ event: 'pool_changed', pool: event.pool.name }, 'deleted' in event.pool ? 'pool deleted' : 'pool changed')
        break
    }
  })
}
