#!/usr/bin/env node
import { CONFIG_FLAGS, ConfigError, loadConfig } from '../config.js'
import { allocate } from './allocate.js'
import { parseCommandLine, UsageError, usageLine } from './args.js'
import { clear } from './clear.js'
import { cooldown } from './cooldown.js'
import { disable } from './disable.js'
import { enable } from './enable.js'
import { exportCommand } from './export.js'
import { history } from './history.js'
import { label } from './label.js'
import { pool } from './pool.js'
import { pools } from './pools.js'
import { StartupError } from './startup.js'
import { VERSION } from '../version.js'
import { release } from './release.js'
import { EXIT } from './remote.js'
import { MIGRATE_HELP, SERVE_HELP } from './service-help.js'
import { renew } from './renew.js'
import { stats } from './stats.js'
import { status } from './status.js'
import { watch } from './watch.js'

interface Command {
  summary: string
  run: (argv: string[]) => Promise<void>
}

/** Parses the service's settings (env + flags) for commands that run the pool themselves. */
function withConfig (name: string, help: string, run: (config: ReturnType<typeof loadConfig>) => Promise<void>) {
  return async (argv: string[]) => {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(help)
      return
    }
    let values
    try {
      values = parseCommandLine({ args: argv, options: Object.fromEntries(CONFIG_FLAGS.map((f) => [f, { type: 'string' as const }])) }).values
    } catch (err) {
      if (!(err instanceof UsageError)) throw err
      process.stderr.write(usageLine(name, err))
      process.exitCode = EXIT.usage
      return
    }
    await run(loadConfig(process.env, values as Record<string, string | undefined>))
  }
}

// One line per command; each lives in its own module.
const COMMANDS: Record<string, Command> = {
  // serve and migrate load Fastify and the database drivers only when run: the other commands start in a fraction of the time.
  serve: { summary: 'run the service (what npm start runs)', run: withConfig('serve', SERVE_HELP, async (c) => { await (await import('./serve.js')).serve(c) }) },
  migrate: { summary: 'apply the schema to DATABASE_URL and exit', run: withConfig('migrate', MIGRATE_HELP, async (c) => { await (await import('./migrate.js')).migrateCommand(c) }) },
  simulate: { summary: 'run N allocations on an in-memory pool and print usage counts', run: async (argv) => { await (await import('./simulate.js')).simulateCommand(argv) } },
  // Operator commands: each talks to a running service through the typed client.
  status,
  allocate,
  release,
  renew,
  cooldown,
  history,
  stats,
  clear,
  pools,
  pool,
  disable,
  enable,
  label,
  export: exportCommand,
  watch,
}

const HELP = `Usage: token-pool <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)}  ${c.summary}`).join('\n')}

Run token-pool <command> --help for a command's own options (serve's are the service's
settings), token-pool --version for the version.
`

async function main (argv: string[]): Promise<void> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP)
    if (name === undefined) process.exitCode = EXIT.usage
    return
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`)
    return
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`token-pool: unknown command ${JSON.stringify(name)} (see token-pool --help)\n`)
    process.exitCode = EXIT.usage
    return
  }
  await command.run(rest)
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`token-pool: ${err.message}\n`)
    process.exitCode = EXIT.usage
  } else if (err instanceof StartupError) {
    process.stderr.write(`token-pool: ${err.message}\n`)
    process.exitCode = 1
  } else {
    // Not a refusal (1) nor a bad command line (2): a script must not read a bug as either.
    process.stderr.write(`token-pool: internal error (a bug in token-pool; please report it): ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = EXIT.bug
  }
  // Don't hang on an open handle after a failure.
  setTimeout(() => process.exit(), 1000).unref()
})
