import { fields, remote } from './remote.js'

const summary = 'usage statistics of the current window'

/** token-pool stats */
export const stats = {
  summary,
  run: remote('stats', {
    usage: 'stats',
    summary,
    run: async ({ client }) => {
      const s = await client.stats()
      const least = s.least_used.slice(0, 5).map((t) => t.token_id).join(', ') + (s.least_used.length > 5 ? `, … (${s.least_used.length} in all)` : '')
      return {
        json: s,
        text: fields([
          ['window', `${s.window_started_at} → ${s.window_resets_at}`],
          ['tokens', `${s.total} (${s.active} active, ${s.available} available)`],
          ['allocations', `${s.allocations_in_window} this window`],
          ['uses per token', `min ${s.usage_count.min}, max ${s.usage_count.max}, mean ${s.usage_count.mean.toFixed(2)}`],
          [`least used (${s.usage_count.min})`, least],
        ]),
      }
    },
  }),
}
