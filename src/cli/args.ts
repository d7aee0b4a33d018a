import { parseArgs, type ParseArgsConfig } from 'node:util'

/** A bad command line: said in one line, exit code 2. */
export class UsageError extends Error {}

type Config = ParseArgsConfig & { options: NonNullable<ParseArgsConfig['options']> }

/**
 * parseArgs, with a bad command line said in this project's words: Node's own text tells
 * the user to pass an unknown option as `-- "--bogus"`, advice that is wrong here.
 */
export function parseCommandLine<T extends Config> (config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (err) {
    if (!String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw err
    throw new UsageError(problemOf(config) ?? (err as Error).message)
  }
}

/** The first thing wrong with the command line, as parseArgs's strict mode checks it. */
function problemOf (config: Config): string | undefined {
  const { tokens } = parseArgs({ ...config, strict: false, tokens: true })
  for (const token of tokens) {
    if (token.kind === 'positional' && config.allowPositionals !== true) return `unexpected argument ${JSON.stringify(token.value)}`
    if (token.kind !== 'option') continue
    const option = config.options[token.name]
    if (option === undefined) return `unknown option ${token.rawName}`
    if (option.type === 'boolean' && token.value !== undefined) return `${token.rawName} takes no value`
    if (option.type === 'string' && token.value === undefined) return `${token.rawName} needs a value`
    // "--user --json": the next option was taken as the value, which is almost never meant.
    if (option.type === 'string' && token.inlineValue === false && /^-./.test(token.value ?? '')) {
      return `${token.rawName} needs a value, not the option ${token.value ?? ''}; for a value that starts with -, write ${token.rawName}=VALUE`
    }
  }
  return undefined
}

/** The line a bad command line prints, pointing at the command's own help. */
export function usageLine (command: string, err: UsageError): string {
  return `token-pool ${command}: ${err.message} (see token-pool ${command} --help)\n`
}
