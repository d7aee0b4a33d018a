import { fields, remote, required } from './remote.js'

const summary = 'lease a token to a user (or show the lease the user already holds)'

/** token-pool allocate --user U */
export const allocate = {
  summary,
  run: remote('allocate', {
    usage: 'allocate --user USER_ID',
    summary,
    details: 'Prints the lease; with --json, the allocate answer\'s data (token_id, lease_id, expires_at, …).',
    options: { user: { type: 'string' } },
    run: async ({ client, values }) => {
      const lease = await client.allocate(required(values, 'user'))
      const pairs: Array<[string, string]> = [
        ['token', lease.token_id],
        ['user', lease.user_id],
        ['lease', String(lease.lease_id)],
        ['started', lease.started_at],
        ['expires', `${lease.expires_at} (in ${lease.expires_in_seconds} s)`],
      ]
      if (lease.evicted_user_id !== null) pairs.push(['evicted', lease.evicted_user_id])
      return { json: lease, text: fields(pairs) }
    },
  }),
}
