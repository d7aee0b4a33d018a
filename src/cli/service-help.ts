import { settingOf, type Config } from '../config.js'

interface SettingHelp {
  group: 'server' | 'pool'
  /** the flag's value, as the help names it */
  value: string
  meaning: string
  /** the default said in words, for a setting that has none of its own (else: unset) */
  unset?: string
}

// Keyed by every setting, so that a new one can't be left out of the help.
const SETTINGS_HELP: Record<keyof Config, SettingHelp> = {
  port: { group: 'server', value: 'N', meaning: 'the HTTP port, 0-65535' },
  host: { group: 'server', value: 'ADDRESS', meaning: 'the interface to listen on; 127.0.0.1 keeps the service to this machine' },
  databaseUrl: {
    group: 'server',
    value: 'URL',
    meaning: 'where the data lives: memory:// (PGlite in memory, gone when the process stops),\n' +
      'file:///DIR (PGlite kept in DIR) or postgres://USER:PASSWORD@HOST:5432/DATABASE',
    unset: 'PGlite kept in ./data',
  },
  adminToken: {
    group: 'server',
    value: 'TOKEN',
    meaning: 'the secret admin routes need (Authorization: Bearer TOKEN); unset, they answer\n' +
      'clients on this machine only',
  },
  logLevel: { group: 'server', value: 'LEVEL', meaning: 'fatal, error, warn, info, debug, trace or silent; warn drops the line per request' },
  rateLimitPerMinute: { group: 'server', value: 'N', meaning: 'requests per minute per client address; 0 turns the limit off' },
  poolSize: { group: 'pool', value: 'N', meaning: 'tokens in the pool, 1-1000000; growing adds tokens, shrinking retires the newest' },
  leaseTtlSeconds: { group: 'pool', value: 'S', meaning: 'length of a new lease and of each renewal, from 0.001 to 86400; fractions allowed' },
  leaseMaxSeconds: {
    group: 'pool',
    value: 'S',
    meaning: 'no lease lasts longer than this from its start; from LEASE_TTL_SECONDS to 86400',
    unset: 'LEASE_TTL_SECONDS',
  },
  usageWindowHours: { group: 'pool', value: 'H', meaning: 'usage counts go back to 0 at the end of each window; fractions allowed' },
  onExhausted: { group: 'pool', value: 'POLICY', meaning: 'when no token is free: evict_oldest (the oldest lease ends) or reject' },
  maxWaitSeconds: { group: 'pool', value: 'S', meaning: 'the longest wait an allocation may ask for, 0-300; 0 turns waiting off' },
  cooldownMaxSeconds: { group: 'pool', value: 'S', meaning: 'the longest cooldown, 1-604800' },
  userQuota: { group: 'pool', value: 'N|none', meaning: 'new leases one user may take per usage window', unset: 'none (no limit)' },
}

/** One setting: its flag and variable, then what it means and its default, indented. */
function settingLines (key: keyof Config, help: SettingHelp): string {
  const { env, flag, fallback } = settingOf(key)
  const byDefault = fallback === undefined || fallback === null ? help.unset ?? 'unset' : String(fallback)
  return `  ${flag} ${help.value}  (${env})\n` + [...help.meaning.split('\n'), `default: ${byDefault}`].map((line) => `      ${line}`).join('\n')
}

function group (name: SettingHelp['group']): string {
  return Object.entries(SETTINGS_HELP)
    .filter(([, help]) => help.group === name)
    .map(([key, help]) => settingLines(key as keyof Config, help))
    .join('\n')
}

export const SERVE_HELP = `Usage: token-pool serve [options]

Runs the service until SIGTERM or SIGINT (Ctrl-C), then lets the requests in flight finish
and closes the database. Applies the schema first when needed. npm start runs this.

Each option is also an environment variable of the same meaning (--pool-size is POOL_SIZE);
the flag wins, and an empty variable counts as unset. docs/configuration.md has every detail.

The server:
${group('server')}

The default pool, set from these at every start (other pools keep their own settings):
${group('pool')}

  -h, --help  this help

Exit codes:
  0  stopped by SIGTERM or SIGINT
  1  could not start (the port is in use, the database can't be used), or stopped after an error
  2  bad command line or setting (one line names it)
  4  token-pool itself failed (a bug; please report it)
`

export const MIGRATE_HELP = `Usage: token-pool migrate [--database-url URL]

Applies the schema to the database and exits, printing "schema is up to date" or
"applied N migration(s)". Optional: serve does the same on start. Run it first when
several servers start at once, or from a deploy step.

${settingLines('databaseUrl', SETTINGS_HELP.databaseUrl)}
  -h, --help  this help

It takes serve's other options too (token-pool serve --help), so that both can share one
environment; they are checked but not used.

Exit codes:
  0  done
  1  the database can't be used (one line says which and why)
  2  bad command line or setting (one line names it)
  4  token-pool itself failed (a bug; please report it)
`
