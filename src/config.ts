import { EXHAUSTION_POLICIES, MIN_DURATION_SECONDS, MIN_WINDOW_HOURS, type ExhaustionPolicy, type PoolSettings } from './domain/types.js'

export interface Config {
  port: number
  host: string
  /** undefined: PGlite kept in ./data; `memory://`: PGlite in memory; else a PostgreSQL URL */
  databaseUrl: string | undefined
  poolSize: number
  /** seconds; fractional allowed */
  leaseTtlSeconds: number
  /** seconds from started_at a lease may be renewed up to; undefined: equal to the TTL */
  leaseMaxSeconds: number | undefined
  /** hours */
  usageWindowHours: number
  onExhausted: ExhaustionPolicy
  maxWaitSeconds: number
  cooldownMaxSeconds: number
  /** new leases per user per window; null: no limit */
  userQuota: number | null
  adminToken: string | undefined
  logLevel: string
  /** requests per minute per client IP; 0 turns rate limiting off */
  rateLimitPerMinute: number
}

export class ConfigError extends Error {}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

interface Setting {
  env: string
  parse: (raw: string) => unknown
  fallback?: unknown
}

const integer = (min: number, max: number) => (raw: string) => {
  if (!/^\d+$/.test(raw.trim())) throw new Error(`must be a whole number from ${min} to ${max}`)
  const n = Number(raw)
  if (n < min || n > max) throw new Error(`must be a whole number from ${min} to ${max}`)
  return n
}

/** A length of time from 1 ms (`min` in the variable's unit) to `max`. */
const duration = (min: number, max: number, unit: string) => (raw: string) => {
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new Error(`must be a number of ${unit} from 1 ms to ${max}`)
  return n
}

const between = (min: number, max: number) => (raw: string) => {
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new Error(`must be a number from ${min} to ${max}`)
  return n
}

const quota = (raw: string) => (raw === 'null' || raw === 'none' ? null : integer(0, 1_000_000_000)(raw))

const oneOf = (values: readonly string[]) => (raw: string) => {
  if (!values.includes(raw)) throw new Error(`must be one of ${values.join(', ')}`)
  return raw
}

const text = (raw: string) => {
  if (raw === '') throw new Error('must not be empty')
  return raw
}

const SETTINGS: Record<keyof Config, Setting> = {
  port: { env: 'PORT', parse: integer(0, 65535), fallback: 4000 },
  host: { env: 'HOST', parse: text, fallback: '0.0.0.0' },
  databaseUrl: {
    env: 'DATABASE_URL',
    parse: (raw) => {
      if (raw === 'memory://' || /^postgres(ql)?:\/\//.test(raw) || raw.startsWith('file://')) return raw
      throw new Error('must be memory://, file://<dir> or a postgres:// URL')
    },
  },
  poolSize: { env: 'POOL_SIZE', parse: integer(1, 1_000_000), fallback: 100 },
  leaseTtlSeconds: { env: 'LEASE_TTL_SECONDS', parse: duration(MIN_DURATION_SECONDS, 86_400, 'seconds'), fallback: 120 },
  leaseMaxSeconds: { env: 'LEASE_MAX_SECONDS', parse: duration(MIN_DURATION_SECONDS, 86_400, 'seconds') },
  usageWindowHours: { env: 'USAGE_WINDOW_HOURS', parse: duration(MIN_WINDOW_HOURS, 24 * 366, 'hours'), fallback: 24 },
  onExhausted: { env: 'ON_EXHAUSTED', parse: oneOf(EXHAUSTION_POLICIES), fallback: 'evict_oldest' },
  maxWaitSeconds: { env: 'MAX_WAIT_SECONDS', parse: between(0, 300), fallback: 60 },
  cooldownMaxSeconds: { env: 'COOLDOWN_MAX_SECONDS', parse: between(1, 604_800), fallback: 3600 },
  userQuota: { env: 'USER_QUOTA', parse: quota, fallback: null },
  adminToken: { env: 'ADMIN_TOKEN', parse: text },
  logLevel: { env: 'LOG_LEVEL', parse: oneOf(LOG_LEVELS), fallback: 'info' },
  rateLimitPerMinute: { env: 'RATE_LIMIT_PER_MINUTE', parse: integer(0, 100_000_000), fallback: 0 },
}

/** The flag of the same meaning as an environment variable: POOL_SIZE → --pool-size. */
export const flagOf = (env: string) => '--' + env.toLowerCase().replaceAll('_', '-')

/** Reads env, then flags (flags win). Throws ConfigError with one line naming the bad variable. */
export function loadConfig (env: NodeJS.ProcessEnv, flags: Record<string, string | undefined> = {}): Config {
  const out: Record<string, unknown> = {}
  for (const [key, s] of Object.entries(SETTINGS)) {
    const flagName = flagOf(s.env).slice(2)
    const raw = flags[flagName] ?? env[s.env]
    if (raw === undefined || (raw === '' && flags[flagName] === undefined)) {
      out[key] = s.fallback
      continue
    }
    try {
      out[key] = s.parse(raw)
    } catch (err) {
      const source = flags[flagName] !== undefined ? flagOf(s.env) : s.env
      throw new ConfigError(`${source}=${JSON.stringify(raw)} ${(err as Error).message}`)
    }
  }
  const config = out as unknown as Config
  if (config.leaseMaxSeconds !== undefined && config.leaseMaxSeconds < config.leaseTtlSeconds) {
    const source = flags['lease-max-seconds'] !== undefined ? '--lease-max-seconds' : 'LEASE_MAX_SECONDS'
    throw new ConfigError(`${source}=${config.leaseMaxSeconds} must be at least LEASE_TTL_SECONDS (${config.leaseTtlSeconds})`)
  }
  return Object.freeze(config)
}

/** The default pool's settings, as the configuration gives them. */
export function defaultPoolSettings (c: Config): PoolSettings {
  return {
    size: c.poolSize,
    lease_ttl_seconds: c.leaseTtlSeconds,
    lease_max_seconds: c.leaseMaxSeconds ?? c.leaseTtlSeconds,
    usage_window_hours: c.usageWindowHours,
    on_exhausted: c.onExhausted,
    max_wait_seconds: c.maxWaitSeconds,
    cooldown_max_seconds: c.cooldownMaxSeconds,
    user_quota: c.userQuota,
  }
}

/** A setting's environment variable, its flag and its default (undefined: unset), for the help of serve. */
export function settingOf (key: keyof Config): { env: string, flag: string, fallback: unknown } {
  const { env, fallback } = SETTINGS[key]
  return { env, flag: flagOf(env), fallback }
}

/** The names of every setting's flag, for parseArgs. */
export const CONFIG_FLAGS = Object.values(SETTINGS).map((s) => flagOf(s.env).slice(2))
