import { MIN_DURATION_SECONDS } from '../domain/types.js'
import type { CreatePool, PoolChanges } from '../client/index.js'
import { poolText } from './pools.js'
import { usageLine } from './args.js'
import { EXIT, numberFlag, remote, type RemoteContext, UsageError } from './remote.js'

const SETTINGS_OPTIONS = {
  size: { type: 'string' },
  'lease-ttl-seconds': { type: 'string' },
  'lease-max-seconds': { type: 'string' },
  'usage-window-hours': { type: 'string' },
  'on-exhausted': { type: 'string' },
  'max-wait-seconds': { type: 'string' },
  'cooldown-max-seconds': { type: 'string' },
  'user-quota': { type: 'string' },
} as const

const SETTINGS_HELP = `Settings (see docs/api.md#settings for what each allows):
  --size N                      tokens in the pool
  --lease-ttl-seconds S         length of a new lease and of each renewal (fractions allowed)
  --lease-max-seconds S         no lease lasts longer than this from its start
  --usage-window-hours H        usage counts go back to 0 at the end of each window
  --on-exhausted POLICY         evict_oldest or reject
  --max-wait-seconds S          the longest wait_seconds an allocation may ask for (0-300; 0: no waiting)
  --cooldown-max-seconds S      the longest cooldown, 1 to 604800
  --user-quota N|none           new leases one user may take per window; none: no limit`

/** The settings given as flags, checked for their form (the service checks their ranges). */
function settingsOf (values: RemoteContext['values']): PoolChanges {
  const changes: PoolChanges = {}
  const set = <K extends keyof PoolChanges>(key: K, value: PoolChanges[K] | undefined) => { if (value !== undefined) changes[key] = value }
  set('size', numberFlag(values, 'size', { integer: true, min: 1 }))
  set('lease_ttl_seconds', numberFlag(values, 'lease-ttl-seconds', { min: MIN_DURATION_SECONDS }))
  set('lease_max_seconds', numberFlag(values, 'lease-max-seconds', { min: MIN_DURATION_SECONDS }))
  set('usage_window_hours', numberFlag(values, 'usage-window-hours', { above: 0 }))
  const policy = values['on-exhausted']
  if (policy !== undefined) {
    if (policy !== 'evict_oldest' && policy !== 'reject') throw new UsageError('--on-exhausted must be evict_oldest or reject')
    changes.on_exhausted = policy
  }
  set('max_wait_seconds', numberFlag(values, 'max-wait-seconds', { min: 0 }))
  set('cooldown_max_seconds', numberFlag(values, 'cooldown-max-seconds', { min: 1, max: 604_800 }))
  if (values['user-quota'] === 'none' || values['user-quota'] === 'null') changes.user_quota = null
  else set('user_quota', numberFlag(values, 'user-quota', { integer: true, min: 0 }))
  return changes
}

const create = remote('pool create', {
  usage: 'pool create NAME [settings]',
  summary: 'create a pool (admin); settings left out take their defaults',
  details: SETTINGS_HELP + '\n\nRefused with pool_exists (exit 1) when the name is in use.',
  options: SETTINGS_OPTIONS,
  positionals: ['NAME'],
  run: async ({ client, values, positionals }) => {
    const body: CreatePool = { name: positionals[0] ?? '', ...settingsOf(values) }
    const pool = await client.createPool(body)
    return { json: pool, text: poolText(pool) }
  },
})

const update = remote('pool set', {
  usage: 'pool set NAME [settings]',
  summary: 'change some of a pool\'s settings (admin)',
  details: SETTINGS_HELP + '\n\nOnly the settings given change. Refused with managed_by_config (exit 1) for the default pool:\n' +
    'set its environment variables and restart instead.',
  options: SETTINGS_OPTIONS,
  positionals: ['NAME'],
  run: async ({ client, values, positionals }) => {
    const changes = settingsOf(values)
    if (Object.keys(changes).length === 0) throw new UsageError('nothing to change: give at least one setting')
    const pool = await client.updatePool(positionals[0] ?? '', changes)
    return { json: pool, text: poolText(pool) }
  },
})

const remove = remote('pool delete', {
  usage: 'pool delete NAME [--force]',
  summary: 'delete a pool (admin); its tokens retire, their histories stay readable',
  details: 'Options of pool delete:\n  --force              end the pool\'s active leases (reason cleared) instead of refusing with pool_busy',
  options: { force: { type: 'boolean' } },
  positionals: ['NAME'],
  run: async ({ client, values, positionals }) => {
    const deleted = await client.deletePool(positionals[0] ?? '', { force: values.force === true })
    return { json: deleted, text: `deleted pool ${deleted.name}\n` }
  },
})

const SUBCOMMANDS: Record<string, { summary: string, run: (argv: string[]) => Promise<void> }> = {
  create: { summary: 'create a pool', run: create },
  set: { summary: 'change a pool\'s settings', run: update },
  delete: { summary: 'delete a pool (--force: even with active leases)', run: remove },
}

const HELP = `Usage: token-pool pool <create|set|delete> NAME [options]

Manage pools (admin: --admin-token or $ADMIN_TOKEN).

${Object.entries(SUBCOMMANDS).map(([name, c]) => `  pool ${name.padEnd(8)}  ${c.summary}`).join('\n')}

Run token-pool pool <create|set|delete> --help for the options of each.
`

/** token-pool pool create|set|delete NAME … */
export const pool = {
  summary: 'create, change or delete a pool (admin)',
  run: async (argv: string[]) => {
    const [name, ...rest] = argv
    if (name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(HELP)
      return
    }
    const sub = name === undefined ? undefined : SUBCOMMANDS[name]
    if (sub === undefined) {
      process.stderr.write(usageLine('pool', new UsageError(name === undefined ? 'missing create, set or delete' : `unknown subcommand ${JSON.stringify(name)}`)))
      process.exitCode = EXIT.usage
      return
    }
    await sub.run(rest)
  },
}
