import { remote } from './remote.js'

const summary = 'end every active lease now (admin: --admin-token or $ADMIN_TOKEN)'

/** token-pool clear */
export const clear = {
  summary,
  run: remote('clear', {
    usage: 'clear [--admin-token T]',
    summary,
    run: async ({ client }) => {
      const cleared = await client.clear()
      return { json: cleared, text: `cleared ${cleared.cleared_tokens} lease(s)\n` }
    },
  }),
}
