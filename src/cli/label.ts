import { tokenFields } from './disable.js'
import { remote, UsageError } from './remote.js'

const labelSummary = 'set or remove a token\'s label (admin)'

/** token-pool label TOKEN TEXT | --remove */
export const label = {
  summary: labelSummary,
  run: remote('label', {
    usage: 'label TOKEN_ID TEXT | label TOKEN_ID --remove',
    summary: labelSummary,
    details: 'Options of label:\n  --remove             remove the label\n\nA label is for people (up to 100 characters); the id stays the only key.\n' +
      'The token is found in whichever pool holds it (there is no --pool).',
    options: { remove: { type: 'boolean' } },
    positionals: ['TOKEN_ID'],
    optionalPositionals: ['TEXT'],
    run: async ({ client, values, positionals }) => {
      const [tokenId = '', text] = positionals
      const remove = values.remove === true
      if (remove && text !== undefined) throw new UsageError('give TEXT or --remove, not both')
      if (!remove && text === undefined) throw new UsageError('missing TEXT, or --remove')
      const token = await client.label(tokenId, remove ? null : text ?? null)
      return { json: token, text: tokenFields(token) }
    },
  }),
}
