import { leaseFields } from './allocate.js'
import { TOKEN_POOL_HELP, POOL_OPTION, remote, required, scope } from './remote.js'

const summary = 'extend a lease by the pool\'s TTL, never past renewable_until'

/** token-pool renew TOKEN --user U [--pool P] */
export const renew = {
  summary,
  run: remote('renew', {
    usage: 'renew TOKEN_ID --user USER_ID [--pool NAME]',
    summary,
    details: 'Prints the lease with its new expiry. Fails with not_holder (exit 1) when the user does not hold the\n' +
      'token, and with renewal_limit when the lease can\'t be extended any further.\n\n' +
      `Options of renew:\n  --user USER_ID       the holder (required)\n${TOKEN_POOL_HELP}`,
    options: { user: { type: 'string' }, ...POOL_OPTION },
    positionals: ['TOKEN_ID'],
    run: async ({ client, values, positionals }) => {
      const user = required(values, 'user')
      const lease = await scope(client, values).renew(positionals[0] ?? '', user)
      return { json: lease, text: leaseFields(lease) }
    },
  }),
}
