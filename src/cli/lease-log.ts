import type { Logger } from 'pino'
import type { PoolEvent, TokenPool } from '../pool/pool.js'

/** Logs each lease event of this process at info: ids, reasons and times, nothing else about the user. */
export function logLeaseEvents (pool: TokenPool, logger: Logger): void {
  const log = logger.child({ component: 'pool' })
  pool.on('change', (event: PoolEvent) => {
    if (event.type === 'allocated') {
      const { tokenId, userId, leaseId, expiresAt, evictedUserId } = event.lease
      log.info({ event: 'allocated', token_id: tokenId, user_id: userId, lease_id: leaseId, expires_at: expiresAt, evicted_user_id: evictedUserId ?? undefined },
        evictedUserId === null ? 'lease allocated' : 'lease allocated by eviction')
    } else {
      const { tokenId, userId, leaseId, releaseReason } = event.lease
      log.info({ event: event.type, token_id: tokenId, user_id: userId, lease_id: leaseId, release_reason: releaseReason }, `lease ended (${releaseReason})`)
    }
  })
}
