import type { TokenDetail } from '../client/index.js'
import { fields, remote, who } from './remote.js'

/** A token's state as key/value lines. */
export function tokenFields (token: TokenDetail, extra: Array<[string, string]> = []): string {
  const pairs: Array<[string, string]> = [
    ['pool', token.pool],
    ['token', token.id],
    ['label', token.label ?? '-'],
    ['status', token.status],
  ]
  if (token.status === 'cooling' && token.cooling_until !== null) pairs.push(['cooling until', token.cooling_until])
  if (token.status === 'disabled') pairs.push(['reason', token.disabled_reason ?? '-'])
  if (token.active_usage !== null) pairs.push(['holder', who(token.active_usage.user_id, token.active_usage.holder)])
  return fields([...pairs, ...extra])
}

const disableSummary = 'take a token out of use until enabled, ending its lease (admin)'

/** token-pool disable TOKEN [--reason TEXT] */
export const disable = {
  summary: disableSummary,
  run: remote('disable', {
    usage: 'disable TOKEN_ID [--reason TEXT]',
    summary: disableSummary,
    details: 'The token is found in whichever pool holds it (there is no --pool). Harmless to repeat.\n\n' +
      'Options of disable:\n  --reason TEXT        why, for people (up to 200 characters)',
    options: { reason: { type: 'string' } },
    positionals: ['TOKEN_ID'],
    run: async ({ client, values, positionals }) => {
      const reason = typeof values.reason === 'string' ? values.reason : undefined
      const result = await client.disable(positionals[0] ?? '', reason)
      const ended = result.ended_lease
      return {
        json: result,
        text: tokenFields(result.token, [['ended lease', ended === null ? '-' : `${ended.lease_id} of ${who(ended.user_id, ended.holder)}`]]),
      }
    },
  }),
}
