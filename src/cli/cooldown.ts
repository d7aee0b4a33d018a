import { leaseFields, WAIT_HELP } from './allocate.js'
import { fields, numberFlag, TOKEN_POOL_HELP, POOL_OPTION, remote, scope, UsageError, who } from './remote.js'

const summary = 'take a token out of use for a while (its holder, or an admin)'

/** token-pool cooldown TOKEN --seconds S [--user U [--reallocate [--wait S]]] [--pool P] */
export const cooldown = {
  summary,
  run: remote('cooldown', {
    usage: 'cooldown TOKEN_ID --seconds S [--user USER_ID [--reallocate [--wait SECONDS]]] [--pool NAME]',
    summary,
    details: 'With --user, the holder\'s lease ends; --reallocate also gives the holder a new lease on another token\n' +
      'and prints it (if none can be given, the cooldown still stands, the command says why, and exits 0);\n' +
      'with --wait, the new lease waits its turn for a token to free, up to that long.\n' +
      'Without --user it is an admin cooldown of any token (--admin-token or $ADMIN_TOKEN).\n\n' +
      'Options of cooldown:\n' +
      '  --seconds S          how long (fractions allowed; at most the pool\'s cooldown_max_seconds)\n' +
      '  --user USER_ID       the holder\n' +
      '  --reallocate         give the holder a new lease on another token\n' +
      `${WAIT_HELP.replace('when no token is free', 'with --reallocate, when no token is free')}\n` +
      `${TOKEN_POOL_HELP}`,
    options: { seconds: { type: 'string' }, user: { type: 'string' }, reallocate: { type: 'boolean' }, wait: { type: 'string' }, ...POOL_OPTION },
    positionals: ['TOKEN_ID'],
    run: async ({ client, values, positionals }) => {
      if (values.seconds === undefined) throw new UsageError('--seconds is required')
      const seconds = numberFlag(values, 'seconds', { above: 0 }) as number
      const user = typeof values.user === 'string' ? values.user : undefined
      const reallocate = values.reallocate === true
      if (reallocate && user === undefined) throw new UsageError('--reallocate needs --user')
      const wait = numberFlag(values, 'wait', { min: 0 })
      if (wait !== undefined && !reallocate) throw new UsageError('--wait needs --reallocate')
      const result = await scope(client, values).cooldown(positionals[0] ?? '', {
        userId: user, seconds, ...(reallocate ? { reallocate } : {}), ...(wait === undefined ? {} : { wait }),
      })
      const { token, ended_lease: ended, lease, lease_error: leaseError } = result
      let text = fields([
        ['pool', token.pool],
        ['token', token.id],
        ['status', token.status],
        ['cooling until', token.cooling_until ?? '-'],
        ['ended lease', ended === null ? '-' : `${ended.lease_id} of ${who(ended.user_id, ended.holder)} (${ended.release_reason})`],
      ])
      if (lease !== null) text += '\nnew lease:\n' + leaseFields(lease)
      if (leaseError !== null) text += `\nno new lease: ${leaseError.code}: ${leaseError.message}\n`
      return { json: result, text }
    },
  }),
}
