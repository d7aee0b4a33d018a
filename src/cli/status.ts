import { duration, POOL_HELP, POOL_OPTION, remote, scope, table, UsageError, who } from './remote.js'

const summary = 'a table of the pool: each token, its holder, time left and uses this window'
const STATUSES = ['active', 'available', 'cooling', 'disabled'] as const

/** token-pool status: the pool at a glance. */
export const status = {
  summary,
  run: remote('status', {
    usage: 'status [--pool NAME] [--status active|available|cooling|disabled]',
    summary,
    details: 'Times left are measured on this machine\'s clock against the service\'s expires_at (cooling_until\n' +
      'for a cooling token).\n\n' +
      `Options of status:\n${POOL_HELP}\n  --status S           only the tokens of one status`,
    options: { status: { type: 'string' }, ...POOL_OPTION },
    run: async ({ client, values }) => {
      const filter = values.status
      if (filter !== undefined && !STATUSES.some((s) => s === filter)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`)
      const pool = scope(client, values)
      const { tokens, meta } = await pool.list(filter === undefined ? {} : { status: filter as (typeof STATUSES)[number] })
      const now = Date.now()
      const until = (t: (typeof tokens)[number]) => t.status === 'cooling' ? t.cooling_until : t.expires_at
      const rows = tokens.map((t) => {
        const end = until(t)
        return [
          t.id,
          t.status,
          t.status === 'active' ? who(t.current_user_id, t.holder) : '-',
          end === null ? '-' : duration(Date.parse(end) - now),
          String(t.usage_count),
        ]
      })
      const name = pool.poolName ?? 'default'
      const head = `Pool ${name}: ${meta.total} token${meta.total === 1 ? '' : 's'}: ${meta.active} active, ${meta.available} available, ${meta.cooling} cooling, ${meta.disabled} disabled, ${meta.waiting} waiting. ` +
        `Usage window resets in ${duration(Date.parse(meta.window_resets_at) - now)} (${meta.window_resets_at}).\n\n`
      return { json: { tokens, meta }, text: head + table(['TOKEN', 'STATUS', 'HOLDER', 'TIME LEFT', 'USES'], rows) }
    },
  }),
}
