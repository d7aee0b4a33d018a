import { tokenFields } from './disable.js'
import { remote } from './remote.js'

const enableSummary = 'put a disabled or cooling token back into use now (admin)'

/** token-pool enable TOKEN */
export const enable = {
  summary: enableSummary,
  run: remote('enable', {
    usage: 'enable TOKEN_ID',
    summary: enableSummary,
    details: 'Ends the token\'s disabled state and its cooldown. The token is found in whichever pool holds it\n' +
      '(there is no --pool). Harmless to repeat.',
    positionals: ['TOKEN_ID'],
    run: async ({ client, positionals }) => {
      const result = await client.enable(positionals[0] ?? '')
      return { json: result, text: tokenFields(result.token) }
    },
  }),
}
