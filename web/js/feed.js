// The recent-events feed: one line of text per server-sent event, and whether it is
// routine (a lease granted, renewed or given back) or something an operator looks for
// (evictions, expiries, clears, cooldowns, disables, pool changes). Pure: no DOM.

export const FEED_MAX = 100

/** Lease events that happen all the time; the feed hides them unless asked. */
export function isRoutine (type, data) {
  return type === 'allocated' || type === 'renewed' || (type === 'released' && data.release_reason === 'released')
}

const who = (d) => (d.user_id ? d.user_id.slice(0, 8) : d.holder ? `holder ${d.holder}` : 'a hidden user')

/**
 * @param {string} type  the SSE event type
 * @param {object} data  its parsed data
 * @param {(tokenId: string) => string} tokenName  "token 12", or a short id for a token not shown
 * @param {(ms: number) => string} time  formats a deadline
 * @returns {{ kind: string, text: string, tokenId: string|null }}
 */
export function describeEvent (type, data, tokenName, time) {
  const tok = (id) => tokenName(id)
  switch (type) {
    case 'allocated':
      return { kind: 'allocated', tokenId: data.token_id, text: `${tok(data.token_id)} leased to ${who(data)} (lease ${data.lease_id})` }
    case 'renewed':
      return { kind: 'renewed', tokenId: data.token_id, text: `${tok(data.token_id)}: lease ${data.lease_id} renewed until ${time(Date.parse(data.expires_at))}` }
    case 'released': {
      const reason = data.release_reason
      const text = {
        released: `${tok(data.token_id)} released by ${who(data)} (lease ${data.lease_id})`,
        expired: `${tok(data.token_id)}: lease ${data.lease_id} of ${who(data)} expired`,
        evicted: `${tok(data.token_id)}: lease ${data.lease_id} of ${who(data)} evicted to make room`,
        cooldown: `${tok(data.token_id)}: lease ${data.lease_id} of ${who(data)} ended by a cooldown`,
        disabled: `${tok(data.token_id)}: lease ${data.lease_id} of ${who(data)} ended, the token was disabled`,
        cleared: `${tok(data.token_id)}: lease ${data.lease_id} of ${who(data)} cleared`,
      }[reason] ?? `${tok(data.token_id)}: lease ${data.lease_id} ended (${reason})`
      return { kind: reason === 'released' ? 'released' : reason, tokenId: data.token_id, text }
    }
    case 'cleared':
      return { kind: 'cleared', tokenId: data.token_id, text: `${tok(data.token_id)}: lease ${data.lease_id} of ${who(data)} cleared` }
    case 'cooling':
      return { kind: 'cooling', tokenId: data.id, text: `${tok(data.id)} cooling until ${time(Date.parse(data.cooling_until))}` }
    case 'disabled':
      return { kind: 'disabled', tokenId: data.id, text: `${tok(data.id)} disabled${data.disabled_reason ? `: ${data.disabled_reason}` : ''}` }
    case 'enabled':
      return { kind: 'enabled', tokenId: data.id, text: `${tok(data.id)} enabled` }
    case 'pool_changed':
      return data.deleted
        ? { kind: 'pool', tokenId: null, text: `pool ${data.name} deleted` }
        : { kind: 'pool', tokenId: null, text: `pool ${data.name} changed: ${data.size} tokens, lease ${data.lease_ttl_seconds} s, ${data.on_exhausted}` }
    case 'reset':
      return { kind: 'reset', tokenId: null, text: 'missed events while away: the pool was read again' }
    default:
      return { kind: type, tokenId: null, text: type }
  }
}
