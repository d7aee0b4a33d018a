import type { Usage } from '../client/index.js'
import { remote, table, UsageError } from './remote.js'

const summary = "a token's usages, newest first (every page)"

/** token-pool history TOKEN */
export const history = {
  summary,
  run: remote('history', {
    usage: 'history TOKEN_ID [--limit N]',
    summary,
    details: 'The token is found in whichever pool holds it (there is no --pool).\n\nOptions of history:\n  --limit N            at most N usages (default: all of them)',
    options: { limit: { type: 'string' } },
    positionals: ['TOKEN_ID'],
    run: async ({ client, values, positionals }) => {
      const raw = values.limit
      const limit = raw === undefined ? Infinity : Number(raw)
      if (!(Number.isInteger(limit) && limit >= 1) && limit !== Infinity) throw new UsageError('--limit must be a whole number from 1')
      const usages: Usage[] = []
      for await (const u of client.history(positionals[0] ?? '', { limit: Math.min(500, limit) })) {
        usages.push(u)
        if (usages.length >= limit) break
      }
      const rows = usages.map((u) => [String(u.lease_id), u.user_id ?? u.holder ?? '(hidden)', u.started_at, u.released_at ?? '(active)', u.release_reason ?? '-'])
      const text = usages.length === 0 ? 'no usages yet\n' : table(['LEASE', 'USER', 'STARTED', 'ENDED', 'REASON'], rows)
      return { json: usages, text }
    },
  }),
}
