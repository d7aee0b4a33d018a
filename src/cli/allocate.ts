import type { Lease, QueueState } from '../client/index.js'
import { fields, numberFlag, POOL_HELP, POOL_OPTION, remote, scope, UsageError, who, type RemoteContext } from './remote.js'

const summary = 'lease a token to a user (or show the lease the user already holds)'

export const WAIT_HELP = '  --wait SECONDS       when no token is free, wait up to this long in the pool\'s queue\n' +
  '                       (0 to the pool\'s max_wait_seconds; default 0: refuse at once)'

/** token-pool allocate USER_ID|--user U [--pool P] [--wait S] */
export const allocate = {
  summary,
  run: remote('allocate', {
    usage: 'allocate USER_ID|--user USER_ID [--pool NAME] [--wait SECONDS]',
    summary,
    details: 'Prints the lease; with --json, the allocate answer\'s data (token_id, lease_id, expires_at, …).\n' +
      'With --wait, a request that finds no token free waits its turn (first come, first served) and\n' +
      'prints a line to stderr each time its place changes, e.g.\n' +
      '  waiting: position 2 of 5, served by 14:03:07 at the latest (in 37 s)\n' +
      'then the lease once served; if the time runs out, pool_exhausted (exit 1). Ctrl-C leaves the queue.\n\n' +
      'Options of allocate:\n' +
      '  --user USER_ID       the user (or give it as the argument)\n' +
      `${POOL_HELP}\n${WAIT_HELP}`,
    options: { user: { type: 'string' }, wait: { type: 'string' }, ...POOL_OPTION },
    optionalPositionals: ['USER_ID'],
    run: async ({ client, values, positionals }) => {
      const user = userOf(values, positionals)
      const wait = numberFlag(values, 'wait', { min: 0 })
      const lease = await scope(client, values).allocate(user, wait === undefined ? {} : { wait, onQueued: queueLines() })
      return { json: lease, text: leaseFields(lease) }
    },
  }),
}

/** The user: --user, or the one argument (not both, unless they agree). */
function userOf (values: RemoteContext['values'], positionals: string[]): string {
  const flag = typeof values.user === 'string' ? values.user : undefined
  const arg = positionals[0]
  if (flag !== undefined && arg !== undefined && flag !== arg) throw new UsageError('give the user once: as the argument or with --user')
  const user = flag ?? arg
  if (user === undefined || user === '') throw new UsageError('--user is required, or USER_ID as the argument')
  return user
}

/**
 * An onQueued that writes a line to stderr whenever the place in the queue or the estimate
 * changes (never to stdout: --json keeps it one document).
 */
export function queueLines (write: (line: string) => void = (line) => { process.stderr.write(line + '\n') }): (q: QueueState) => void {
  let last = ''
  return (q) => {
    const key = `${q.position}/${q.waiting}/${q.estimatedGrantAt?.getTime() ?? '-'}`
    if (key === last) return
    last = key
    write(queueLine(q))
  }
}

/** "waiting: position 2 of 5, served by 14:03:07 at the latest (in 37 s)" */
export function queueLine (q: QueueState, now = Date.now()): string {
  const eta = q.estimatedGrantAt === null
    ? 'no served-by time yet'
    : `served by ${clock(q.estimatedGrantAt)} at the latest (in ${Math.max(0, Math.ceil((q.estimatedGrantAt.getTime() - now) / 1000))} s)`
  return `waiting: position ${q.position} of ${q.waiting}, ${eta}`
}

/** HH:MM:SS in this machine's time zone. */
function clock (d: Date): string {
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
}

/** A lease as key/value lines, for allocate, renew and cooldown --reallocate. */
export function leaseFields (lease: Lease): string {
  const pairs: Array<[string, string]> = [
    ['pool', lease.pool],
    ['token', lease.token_id],
    ['user', who(lease.user_id, lease.holder)],
    ['lease', String(lease.lease_id)],
    ['started', lease.started_at],
    ['expires', `${lease.expires_at} (in ${lease.expires_in_seconds} s)`],
    ['renewable until', lease.renewable_until],
  ]
  if (lease.evicted_user_id !== null) pairs.push(['evicted', lease.evicted_user_id])
  return fields(pairs)
}
