import { POOL_HELP, POOL_OPTION, remote, scope } from './remote.js'

const summary = 'end every active lease of a pool now (admin: --admin-token or $ADMIN_TOKEN)'

/** token-pool clear [--pool P] */
export const clear = {
  summary,
  run: remote('clear', {
    usage: 'clear [--pool NAME] [--admin-token T]',
    summary,
    details: `Options of clear:\n${POOL_HELP}`,
    options: { ...POOL_OPTION },
    run: async ({ client, values }) => {
      const cleared = await scope(client, values).clear()
      return { json: cleared, text: `cleared ${cleared.cleared_tokens} lease(s)\n` }
    },
  }),
}
