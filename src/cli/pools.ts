import type { Pool } from '../client/index.js'
import { fields, remote, table } from './remote.js'

const summary = 'every pool, with its settings and counts'

/** token-pool pools */
export const pools = {
  summary,
  run: remote('pools', {
    usage: 'pools',
    summary,
    details: 'TTL and MAX are lease_ttl_seconds and lease_max_seconds; WINDOW is usage_window_hours;\n' +
      'MAX WAIT and MAX COOLDOWN are max_wait_seconds and cooldown_max_seconds;\n' +
      'WAITING is how many users wait in the pool\'s queue now (rule 12).',
    run: async ({ client }) => {
      const all = await client.pools()
      const rows = all.map((p) => [
        p.name, String(p.size), `${p.lease_ttl_seconds}s`, `${p.lease_max_seconds}s`, `${p.usage_window_hours}h`, p.on_exhausted,
        p.user_quota === null ? '-' : String(p.user_quota), `${p.max_wait_seconds}s`, `${p.cooldown_max_seconds}s`,
        String(p.active), String(p.available), String(p.cooling), String(p.disabled), String(p.waiting),
      ])
      const header = ['POOL', 'SIZE', 'TTL', 'MAX', 'WINDOW', 'ON EXHAUSTED', 'QUOTA', 'MAX WAIT', 'MAX COOLDOWN', 'ACTIVE', 'AVAILABLE', 'COOLING', 'DISABLED', 'WAITING']
      return { json: all, text: table(header, rows) }
    },
  }),
}

/** A pool as key/value lines. */
export function poolText (p: Pool): string {
  return fields([
    ['pool', p.name],
    ['size', String(p.size)],
    ['lease ttl', `${p.lease_ttl_seconds} s`],
    ['lease max', `${p.lease_max_seconds} s`],
    ['usage window', `${p.usage_window_hours} h`],
    ['on exhausted', p.on_exhausted],
    ['max wait', `${p.max_wait_seconds} s`],
    ['cooldown max', `${p.cooldown_max_seconds} s`],
    ['user quota', p.user_quota === null ? 'none' : String(p.user_quota)],
    ['tokens', `${p.total} (${p.active} active, ${p.available} available, ${p.cooling} cooling, ${p.disabled} disabled, ${p.waiting} waiting)`],
  ])
}
