import type { ParseArgsConfig } from 'node:util'
import { TokenPoolClient, TokenPoolError, TokenPoolUnreachableError, type TokenPoolScope } from '../client/index.js'
import { parseCommandLine, UsageError, usageLine } from './args.js'

export { UsageError }

/** Exit codes of the operator commands, the same for each; scripts may rely on them. */
export const EXIT = {
  /** done */
  ok: 0,
  /** the service answered with an error (the contract's code is printed) */
  failed: 1,
  /** bad command line */
  usage: 2,
  /** the service could not be reached */
  unreachable: 3,
  /** token-pool itself failed: a bug, which a script must not read as a refusal or a bad command line */
  bug: 4,
} as const

export const DEFAULT_URL = 'http://127.0.0.1:4000'

type Options = NonNullable<ParseArgsConfig['options']>

type Value = string | boolean | Array<string | boolean> | undefined

export interface RemoteContext {
  client: TokenPoolClient
  values: Record<string, Value>
  positionals: string[]
}

/** What a command prints: `json` for --json (stdout, one document), `text` for people. */
export interface Output {
  json: unknown
  text: string
}

export interface RemoteCommand {
  /** e.g. 'release TOKEN --user U' */
  usage: string
  summary: string
  /** extra lines for --help */
  details?: string
  options?: Options
  /** names of the positional arguments, each required */
  positionals?: string[]
  /** names of positional arguments that may follow the required ones */
  optionalPositionals?: string[]
  /** what to print; nothing when the command wrote its output itself, as it came (export, watch) */
  run: (ctx: RemoteContext) => Promise<Output | undefined>
}

const COMMON: Options = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  'admin-token': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
}

const COMMON_HELP = `Options:
  --url URL            the service (default $TOKEN_POOL_URL, else ${DEFAULT_URL})
  --json               print JSON (the answer's data, or {"error": …}) instead of text
  --admin-token T      sent as Authorization: Bearer T (default $ADMIN_TOKEN)
  -h, --help           this help

Exit codes:
  0  done
  1  the service answered with an error (its code is printed, e.g. not_holder)
  2  bad command line
  3  the service could not be reached
  4  token-pool itself failed (a bug; please report it)`

export function helpOf (name: string, command: RemoteCommand): string {
  return `Usage: token-pool ${command.usage} [--url URL] [--json]

${command.summary}
${command.details === undefined ? '' : '\n' + command.details + '\n'}
${COMMON_HELP}
`
}

/**
 * Turns a command that talks to a running service into `run(argv)`: parses the common
 * options, prints the answer as text or JSON, and sets the exit code scripts rely on.
 */
export function remote (name: string, command: RemoteCommand): (argv: string[]) => Promise<void> {
  return async (argv) => {
    let json = argv.includes('--json')
    try {
      const { values, positionals } = parse(argv, command)
      if (values.help === true) {
        process.stdout.write(helpOf(name, command))
        return
      }
      json = values.json === true
      const flag = str(values.url)
      const url = flag ?? nonEmpty(process.env.TOKEN_POOL_URL) ?? DEFAULT_URL
      if (!/^https?:\/\//.test(url)) throw new UsageError(`${flag === undefined ? 'TOKEN_POOL_URL' : '--url'} must be an http:// or https:// URL, not ${JSON.stringify(url)}`)
      const adminToken = str(values['admin-token']) ?? nonEmpty(process.env.ADMIN_TOKEN)
      // An HTTP header carries bytes 0-255 only: anything else could never be sent.
      if (adminToken !== undefined && /[^\x20-\x7e\x80-\xff]/.test(adminToken)) {
        throw new UsageError('the admin token (--admin-token or ADMIN_TOKEN) must be printable ASCII or Latin-1 characters: it is sent in an HTTP header')
      }
      const client = new TokenPoolClient({ url, adminToken })
      const output = await command.run({ client, values, positionals })
      if (output !== undefined) process.stdout.write(json ? JSON.stringify(output.json, null, 2) + '\n' : output.text)
      process.exitCode = EXIT.ok
    } catch (err) {
      process.exitCode = fail(name, err, json)
    }
  }
}

function parse (argv: string[], command: RemoteCommand) {
  const parsed = parseCommandLine({ args: argv, options: { ...COMMON, ...command.options }, allowPositionals: true, strict: true })
  if (parsed.values.help === true) return parsed
  const wanted = command.positionals ?? []
  if (parsed.positionals.length < wanted.length) throw new UsageError(`missing ${wanted.slice(parsed.positionals.length).join(' ')}`)
  const most = wanted.length + (command.optionalPositionals ?? []).length
  if (parsed.positionals.length > most) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[most])}`)
  return parsed
}

function fail (name: string, err: unknown, json: boolean): number {
  const print = (body: unknown, line: string) => {
    if (json) process.stdout.write(JSON.stringify(body, null, 2) + '\n')
    else process.stderr.write(line + '\n')
  }
  if (err instanceof UsageError) {
    process.stderr.write(usageLine(name, err))
    return EXIT.usage
  }
  if (err instanceof TokenPoolError) {
    print({ error: { code: err.code, message: err.message, details: err.details, status: err.status, retry_after_seconds: err.retryAfterSeconds ?? null, request_id: err.requestId ?? null } },
      `token-pool ${name}: ${err.code}: ${err.message}` +
      (err.retryAfterSeconds === undefined ? '' : ` (retry after ${err.retryAfterSeconds} s)`) +
      (err.requestId === undefined ? '' : ` [request ${err.requestId}]`))
    return EXIT.failed
  }
  if (err instanceof TokenPoolUnreachableError) {
    print({ error: { code: 'unreachable', message: err.message, details: null, status: null, retry_after_seconds: null, request_id: null } }, `token-pool ${name}: ${err.message}`)
    return EXIT.unreachable
  }
  throw err
}

/** The --pool option of the lease commands. */
export const POOL_OPTION: Options = { pool: { type: 'string' } }

export const POOL_HELP = '  --pool NAME          the pool (default: default)'
/** The --pool option of the commands of one token, which find it in any pool without it. */
export const TOKEN_POOL_HELP = '  --pool NAME          the pool that must hold the token (default: whichever pool holds it)'

/**
 * The calls of the pool --pool names; without --pool, the client itself: the default
 * pool's routes, and token routes that find the token in whichever pool holds it.
 */
export function scope (client: TokenPoolClient, values: RemoteContext['values']): TokenPoolScope {
  const name = values.pool
  if (name === undefined) return client
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) {
    throw new UsageError('--pool must be a pool name: 1-63 of a-z, 0-9, _ and -, starting with a letter or digit')
  }
  return client.pool(name)
}

/** A flag's value as a number (when given): a usage error when it isn't one, or is out of [min, max]. */
export function numberFlag (values: RemoteContext['values'], flag: string, opts: { integer?: boolean, min?: number, above?: number, max?: number } = {}): number | undefined {
  const raw = values[flag]
  if (raw === undefined) return undefined
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN
  const what = opts.integer === true ? 'a whole number' : 'a number'
  const bounds = opts.above !== undefined ? ` above ${opts.above}` : opts.min !== undefined ? ` from ${opts.min}` : ''
  const upTo = opts.max === undefined ? '' : ` up to ${opts.max}`
  if (!Number.isFinite(n) || (opts.integer === true && !Number.isInteger(n)) ||
      (opts.min !== undefined && n < opts.min) || (opts.above !== undefined && n <= opts.above) || (opts.max !== undefined && n > opts.max)) {
    throw new UsageError(`--${flag} must be ${what}${bounds}${upTo}, not ${JSON.stringify(raw)}`)
  }
  return n
}

/** Someone who holds or held a token, as this caller may see them: the user id, else its holder fingerprint. */
export function who (userId: string | null, holder?: string | null): string {
  return userId ?? holder ?? '(hidden)'
}

const str = (v: Value) => (typeof v === 'string' ? v : undefined)
const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v)

/** A flag's value that the command needs: a usage error when absent. */
export function required (values: RemoteContext['values'], flag: string): string {
  const v = values[flag]
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${flag} is required`)
  return v
}

/** Rows as aligned columns under a header, for a terminal. */
export function table (header: string[], rows: string[][]): string {
  // A loop, not Math.max(...column): a pool's status has up to 1,000,000 rows, past the call stack's limit.
  const widths = header.map((h) => h.length)
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length) })
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

/** "1h 02m", "1m 53s", "7s": whole seconds, for people. */
export function duration (ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`
  return `${sec}s`
}

/** Key/value lines, keys aligned. */
export function fields (pairs: Array<[string, string]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${(k + ':').padEnd(width + 1)}  ${v}`).join('\n') + '\n'
}
