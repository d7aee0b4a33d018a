import type { PoolEvent } from '../client/index.js'
import { POOL_OPTION, remote, scope, who } from './remote.js'

const summary = 'follow the event stream, one line an event, until Ctrl-C'

/** token-pool watch [--pool P] */
export const watch = {
  summary,
  run: remote('watch', {
    usage: 'watch [--pool NAME]',
    summary,
    details: 'Prints each event: its type, pool, token and user, and the release reason where there is one;\n' +
      'with --json, one JSON object ({"id", "type", "data"}) a line. Reconnects by itself when the connection\n' +
      'drops, and picks up where it left off; if it was away too long to catch up, a reset line says so.\n\n' +
      'Options of watch:\n  --pool NAME          only this pool\'s events (default: every pool)',
    options: { ...POOL_OPTION },
    run: async ({ client, values }) => {
      const pool = scope(client, values).poolName
      // Fail now, with exit 1 or 3, when the pool does not exist or the service is down; later
      // the stream reconnects by itself.
      if (pool === undefined) await client.ready()
      else await client.getPool(pool)
      const json = values.json === true
      const stop = new AbortController()
      const quit = () => { stop.abort() }
      process.once('SIGINT', quit)
      process.once('SIGTERM', quit)
      process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') stop.abort() })
      try {
        for await (const event of client.events({ pool, signal: stop.signal })) {
          process.stdout.write(json ? JSON.stringify(event) + '\n' : line(event) + '\n')
        }
      } finally {
        process.off('SIGINT', quit)
        process.off('SIGTERM', quit)
      }
      return undefined
    },
  }),
}

/** One event for people: time, type, pool, then what it is about. */
export function line (e: PoolEvent): string {
  const at = new Date().toISOString()
  const head = `${at}  ${e.type.padEnd(12)}`
  switch (e.type) {
    case 'allocated':
    case 'renewed':
      return `${head}  ${e.data.pool}  token ${e.data.token_id}  user ${who(e.data.user_id, e.data.holder)}  lease ${e.data.lease_id}  expires ${e.data.expires_at}` +
        (e.data.evicted_user_id === null ? '' : `  evicted ${e.data.evicted_user_id}`)
    case 'released':
    case 'cleared':
      return `${head}  ${e.data.pool}  token ${e.data.token_id}  user ${who(e.data.user_id, e.data.holder)}  lease ${e.data.lease_id}  ${e.data.release_reason}`
    case 'cooling':
      return `${head}  ${e.data.pool}  token ${e.data.id}  until ${e.data.cooling_until ?? '-'}`
    case 'disabled':
      return `${head}  ${e.data.pool}  token ${e.data.id}` + (e.data.disabled_reason === null ? '' : `  reason ${JSON.stringify(e.data.disabled_reason)}`)
    case 'enabled':
      return `${head}  ${e.data.pool}  token ${e.data.id}`
    case 'pool_changed':
      return `${head}  ${e.data.pool}  ` + (e.data.deleted === true
        ? 'deleted'
        : `size ${e.data.size}, ${e.data.active} active, ${e.data.available} available, ${e.data.cooling} cooling, ${e.data.disabled} disabled`)
    case 'reset':
      return `${head}  events were missed while away: re-read the state (token-pool status)`
  }
}
