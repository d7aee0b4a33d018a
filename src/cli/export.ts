import { once } from 'node:events'
import { POOL_HELP, POOL_OPTION, remote, scope, UsageError } from './remote.js'

const summary = 'every usage of a pool, oldest first, as NDJSON or CSV on standard output (admin)'

/** token-pool export [--pool P] [--since ISO] [--until ISO] [--format ndjson|csv] */
export const exportCommand = {
  summary,
  run: remote('export', {
    usage: 'export [--pool NAME] [--since ISO] [--until ISO] [--format ndjson|csv]',
    summary,
    details: 'Writes the usages whose started_at is in [--since, --until) as they stream from the service.\n' +
      'The output is the same with or without --json.\n\n' +
      `Options of export:\n${POOL_HELP}\n` +
      '  --since ISO          usages started at or after this timestamp\n' +
      '  --until ISO          usages started before this timestamp\n' +
      '  --format F           ndjson (the default: one JSON object a line) or csv (a header row, then a row a usage)',
    options: { since: { type: 'string' }, until: { type: 'string' }, format: { type: 'string' }, ...POOL_OPTION },
    run: async ({ client, values }) => {
      const since = timestamp(values.since, 'since')
      const until = timestamp(values.until, 'until')
      const format = values.format ?? 'ndjson'
      if (format !== 'ndjson' && format !== 'csv') throw new UsageError('--format must be ndjson or csv')
      // A reader that stops early (| head) is not a failure.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(0) })
      for await (const chunk of scope(client, values).exportText({ since, until, format })) {
        if (!process.stdout.write(chunk)) await once(process.stdout, 'drain')
      }
      return undefined
    },
  }),
}

function timestamp (raw: unknown, flag: string): string | undefined {
  if (raw === undefined) return undefined
  if (typeof raw !== 'string' || !/^\d{4}-\d\d-\d\dT/.test(raw) || !Number.isFinite(Date.parse(raw))) {
    throw new UsageError(`--${flag} must be an ISO 8601 timestamp, e.g. 2026-11-01T00:00:00.000Z`)
  }
  // The service wants a full date-time: let Date fill in what was left out (seconds, zone = local).
  return new Date(raw).toISOString()
}
