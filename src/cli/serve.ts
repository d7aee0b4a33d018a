import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { defaultPoolSettings, type Config } from '../config.js'
import { buildApp } from '../http/app.js'
import { TokenPool } from '../pool/pool.js'
import { openDb } from '../store/open.js'
import { logLeaseEvents } from './lease-log.js'
import { databaseProblem, describeChanges, describeDatabase, listenProblem } from './startup.js'

/** Runs the service until SIGTERM/SIGINT, then drains in-flight requests and closes the database. */
export async function serve (config: Config): Promise<void> {
  const problem = await listenProblem(config.host, config.port)
  if (problem !== undefined) {
    // A setting to change, not a crash: one line, no stack trace.
    process.stderr.write(`token-pool: ${problem}\n`)
    process.exitCode = 1
    return
  }
  const logger = pino({
    level: config.logLevel,
    // Readable for a person at a terminal, JSON for a log pipeline.
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  })
  // Said before the wait, so a first start on PGlite doesn't look like a hang.
  logger.info(describeDatabase(config.databaseUrl))
  const db = await openDb(config.databaseUrl).catch((err: unknown) => { throw databaseProblem(config.databaseUrl, err) })
  const pool = new TokenPool(db, { defaultPool: defaultPoolSettings(config) })
  if (config.adminToken === undefined) {
    logger.warn('ADMIN_TOKEN is not set: admin routes (pools, clear, disable, export, …) answer only clients on this machine (loopback); set ADMIN_TOKEN to use them over the network')
  }
  logLeaseEvents(pool, logger)
  let changed
  try {
    changed = await pool.start()
  } catch (err) {
    await db.close().catch(() => {})
    throw databaseProblem(config.databaseUrl, err)
  }
  if (changed.length > 0) {
    // Every node serves the stored settings: one started with another configuration (a
    // forgotten variable, an old deployment) changes the pool under all of them.
    logger.warn({ changed }, `this start changed the default pool's settings for every node sharing the database: ${describeChanges(changed)}`)
  }
  const app = await buildApp({ pool, adminToken: config.adminToken, logger, rateLimitPerMinute: config.rateLimitPerMinute })

  closeWithGrace({ delay: 10_000, logger }, async ({ err, signal }) => {
    if (err !== undefined) logger.error({ err }, 'stopping after an error')
    else logger.info({ signal }, 'stopping')
    // Waiters first (503, Retry-After): they would hold app.close() for their whole wait.
    await pool.stop()
    await app.close()
    await db.close()
  })

  await app.listen({ port: config.port, host: config.host })
  // What a person opens next: the dashboard and the API's pages, at an address a browser takes.
  const bound = app.server.address()
  const port = typeof bound === 'object' && bound !== null ? bound.port : config.port
  const base = `http://${['0.0.0.0', '::'].includes(config.host) ? 'localhost' : config.host}:${port}`
  logger.info({ db: db.kind, poolSize: config.poolSize, ttl: config.leaseTtlSeconds },
    `token pool listening on http://${config.host}:${port}: dashboard ${base}/, API docs ${base}/docs`)
}
