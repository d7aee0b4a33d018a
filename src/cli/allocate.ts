import type { Lease } from '../client/index.js'
import { fields, POOL_HELP, POOL_OPTION, remote, required, scope, who } from './remote.js'

const summary = 'lease a token to a user (or show the lease the user already holds)'

/** token-pool allocate --user U [--pool P] */
export const allocate = {
  summary,
  run: remote('allocate', {
    usage: 'allocate --user USER_ID [--pool NAME]',
    summary,
    details: 'Prints the lease; with --json, the allocate answer\'s data (token_id, lease_id, expires_at, …).\n\n' +
      `Options of allocate:\n  --user USER_ID       the user (required)\n${POOL_HELP}`,
    options: { user: { type: 'string' }, ...POOL_OPTION },
    run: async ({ client, values }) => {
      const user = required(values, 'user')
      const lease = await scope(client, values).allocate(user)
      return { json: lease, text: leaseFields(lease) }
    },
  }),
}

/** A lease as key/value lines, for allocate, renew and cooldown --reallocate. */
export function leaseFields (lease: Lease): string {
  const pairs: Array<[string, string]> = [
    ['pool', lease.pool],
    ['token', lease.token_id],
    ['user', who(lease.user_id, lease.holder)],
    ['lease', String(lease.lease_id)],
    ['started', lease.started_at],
    ['expires', `${lease.expires_at} (in ${lease.expires_in_seconds} s)`],
    ['renewable until', lease.renewable_until],
  ]
  if (lease.evicted_user_id !== null) pairs.push(['evicted', lease.evicted_user_id])
  return fields(pairs)
}
