import { duration, remote, table, UsageError } from './remote.js'

const summary = 'a table of the pool: each token, its holder, time left and uses this window'

/** token-pool status: the pool at a glance. */
export const status = {
  summary,
  run: remote('status', {
    usage: 'status [--status active|available]',
    summary,
    details: 'Times left are measured on this machine\'s clock against the service\'s expires_at.',
    options: { status: { type: 'string' } },
    run: async ({ client, values }) => {
      const filter = values.status
      if (filter !== undefined && filter !== 'active' && filter !== 'available') throw new UsageError('--status must be active or available')
      const { tokens, meta } = await client.list(filter === undefined ? {} : { status: filter })
      const now = Date.now()
      const rows = tokens.map((t) => [
        t.id,
        t.status,
        t.current_user_id ?? '-',
        t.expires_at === null ? '-' : duration(Date.parse(t.expires_at) - now),
        String(t.usage_count),
      ])
      const head = `${meta.total} tokens: ${meta.active} active, ${meta.available} available. ` +
        `Usage window resets in ${duration(Date.parse(meta.window_resets_at) - now)} (${meta.window_resets_at}).\n\n`
      return { json: { tokens, meta }, text: head + table(['TOKEN', 'STATUS', 'HOLDER', 'TIME LEFT', 'USES'], rows) }
    },
  }),
}
