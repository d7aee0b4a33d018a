#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { CONFIG_FLAGS, ConfigError, loadConfig } from '../config.js'
import { migrateCommand } from './migrate.js'
import { serve } from './serve.js'

const HELP = `Usage: token-pool <command> [options]

Commands:
  serve       run the service (what npm start runs)
  migrate     apply the schema to DATABASE_URL and exit

Options (each also an environment variable: --pool-size is POOL_SIZE):
  ${CONFIG_FLAGS.map((f) => '--' + f).join('\n  ')}
  -h, --help
`

async function main (argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(CONFIG_FLAGS.map((f) => [f, { type: 'string' as const }])),
    },
  })
  const [command] = positionals
  if (values.help === true || command === undefined) {
    process.stdout.write(HELP)
    if (command === undefined && values.help !== true) process.exitCode = 2
    return
  }
  const config = loadConfig(process.env, values as Record<string, string | undefined>)
  switch (command) {
    case 'serve': return await serve(config)
    case 'migrate': return await migrateCommand(config)
    default:
      process.stderr.write(`token-pool: unknown command "${command}"\n\n${HELP}`)
      process.exitCode = 2
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
    process.stderr.write(`token-pool: ${(err as Error).message}\n`)
    process.exitCode = 2
  } else {
    process.stderr.write(`token-pool: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  }
  // Don't hang on an open handle after a failure.
  setTimeout(() => process.exit(), 1000).unref()
})
