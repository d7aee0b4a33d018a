import { fields, numberFlag, POOL_HELP, POOL_OPTION, remote, scope } from './remote.js'

const summary = 'usage statistics of the current window'

/** token-pool stats [--pool P] [--least-used-limit N] */
export const stats = {
  summary,
  run: remote('stats', {
    usage: 'stats [--pool NAME] [--least-used-limit N]',
    summary,
    details: `Options of stats:\n${POOL_HELP}\n  --least-used-limit N how many least-used tokens the service sends (1-10000, default 100)`,
    options: { 'least-used-limit': { type: 'string' }, ...POOL_OPTION },
    run: async ({ client, values }) => {
      const leastUsedLimit = numberFlag(values, 'least-used-limit', { integer: true, min: 1, max: 10_000 })
      const s = await scope(client, values).stats(leastUsedLimit === undefined ? {} : { leastUsedLimit })
      const least = s.least_used.slice(0, 5).map((t) => t.token_id).join(', ') +
        (s.least_used_count > 5 ? `, … (${s.least_used_count} in all)` : '')
      return {
        json: s,
        text: fields([
          ['pool', s.pool],
          ['window', `${s.window_started_at} → ${s.window_resets_at}`],
          ['tokens', `${s.total} (${s.active} active, ${s.available} available, ${s.cooling} cooling, ${s.disabled} disabled)`],
          ['allocations', `${s.allocations_in_window} this window`],
          ['uses per token', `min ${s.usage_count.min}, max ${s.usage_count.max}, mean ${s.usage_count.mean.toFixed(2)}`],
          [`least used (${s.usage_count.min})`, least],
        ]),
      }
    },
  }),
}
