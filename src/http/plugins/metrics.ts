import type { FastifyInstance, RouteHandlerMethod } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { PoolEvent, WaitEnded } from '../../pool/context.js'
import type { TokenPool } from '../../pool/pool.js'

// From a cached round trip (~1 ms) to a slow database under load.
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
// Time spent waiting in a pool's queue (rule 12): from a token freed a moment later to a
// wait of max_wait_seconds (at most 300 s).
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

const ALLOCATE_ROUTES = new Set(['/api/tokens/allocate', '/api/tokens/activate', '/api/pools/:pool/tokens/allocate', '/api/pools/:pool/tokens/activate'])

/**
 * Prometheus metrics at GET /metrics, on a registry of this app's own (tests build many apps).
 * Counters count what this process did since it started (Prometheus sums nodes and handles
 * restarts with rate()); gauges of the pool's state are read from the database at scrape time,
 * so they are right on every node and after every restart.
 * Registered before the routes: it times the allocate handlers and every request.
 */
export default fp(async function metrics (app: FastifyInstance, { pool }: { pool: TokenPool }) {
  const register = new Registry()
  collectDefaultMetrics({ register })
  const registers = [register]

  const counter = (name: string, help: string) => new Counter({ name: `token_pool_${name}_total`, help, labelNames: ['pool'], registers })
  const allocations = counter('allocations', 'New leases granted by this process (an idempotent repeat is not one).')
  const evictions = counter('evictions', 'Leases ended early to make room for a new user (on_exhausted=evict_oldest).')
  const expiries = counter('expiries', 'Leases that ran out, counted by the process that wrote their end (its sweep, or an allocation that needed their token or user first).')
  const releases = counter('releases', 'Leases given back early by their holder.')
  const clears = counter('clears', 'Leases ended by an admin clear.')
  const renewals = counter('renewals', 'Leases renewed by their holder.')
  const cooldowns = counter('cooldowns', 'Tokens put into cooldown (by their holder or an admin).')
  const disables = counter('disables', 'Tokens disabled by an admin.')
  const enables = counter('enables', 'Tokens enabled by an admin.')

  // The pools' state has a registry of its own, left out of a scrape that could not read it.
  const poolRegister = new Registry()
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name: `token_pool_${name}`, help, labelNames: ['pool', ...labelNames], registers: [poolRegister] })
  const size = gauge('size_tokens', 'Tokens in the pool (its size), from the database.')
  const tokensByState = gauge('tokens', 'Tokens by state (active, available, cooling, disabled), from the database.', ['state'])
  const active = gauge('tokens_active', 'Tokens leased now, from the database.')
  const available = gauge('tokens_available', 'Tokens free now, from the database.')
  const waiting = gauge('waiting_requests', 'Users waiting in the pool\'s queue for a token now (rule 12), on every node, from the database.')
  const windowStart = gauge('window_start_time_seconds', 'Start of the current usage window, Unix time.')
  const windowReset = gauge('window_reset_time_seconds', 'When usage counts next go back to 0, Unix time.')
  const windowAllocations = gauge('window_allocations', 'Allocations in the current usage window, from the database.')
  const usageCount = gauge('window_usage_count', 'Per-token allocations in the current window: min, max and mean over the pool.', ['stat'])
  const databaseUp = new Gauge({ name: 'token_pool_database_up', help: '1 when this scrape could read the pools from the database, else 0.', registers })

  const allocationSeconds = new Histogram({
    name: 'token_pool_allocation_duration_seconds',
    help: 'Time to answer an allocation (batched commit included), successful or not.',
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const requestSeconds = new Histogram({
    name: 'token_pool_http_request_duration_seconds',
    help: 'HTTP requests by method, route template and status code.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const waitSeconds = new Histogram({
    name: 'token_pool_wait_duration_seconds',
    help: 'Time a queued allocation on this process waited for its answer, by outcome: allocated, timed_out (409), gone (the client left) or failed.',
    labelNames: ['pool', 'outcome'],
    buckets: WAIT_BUCKETS,
    registers,
  })

  const onChange = (event: PoolEvent) => {
    switch (event.type) {
      case 'allocated':
        allocations.inc({ pool: event.lease.pool })
        if (event.lease.evictedUserId !== null) evictions.inc({ pool: event.lease.pool })
        break
      case 'renewed':
        renewals.inc({ pool: event.lease.pool })
        break
      case 'cleared':
        clears.inc({ pool: event.lease.pool })
        break
      case 'released':
        if (event.lease.releaseReason === 'expired') expiries.inc({ pool: event.lease.pool })
        else if (event.lease.releaseReason === 'released') releases.inc({ pool: event.lease.pool })
        break
      case 'cooling':
        cooldowns.inc({ pool: event.token.pool })
        break
      case 'disabled':
        disables.inc({ pool: event.token.pool })
        break
      case 'enabled':
        enables.inc({ pool: event.token.pool })
        break
    }
  }
  pool.on('change', onChange)
  const onWaited = (event: WaitEnded) => { waitSeconds.observe({ pool: event.pool, outcome: event.outcome }, event.seconds) }
  pool.on('waited', onWaited)
  app.addHook('onClose', async () => {
    pool.off('change', onChange)
    pool.off('waited', onWaited)
  })

  app.addHook('onRoute', (route) => {
    if (!ALLOCATE_ROUTES.has(route.url) || route.method !== 'POST') return
    const handler = route.handler
    route.handler = async function timed (this: FastifyInstance, request, reply) {
      const end = allocationSeconds.startTimer()
      try {
        return await handler.call(this, request, reply)
      } finally {
        end()
      }
    } as RouteHandlerMethod
  })

  // The hot path: ~1 µs a request (prom-client hashes the labels; caching labelled children measured no faster).
  app.addHook('onResponse', async (request, reply) => {
    requestSeconds.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: reply.statusCode }, reply.elapsedTime / 1000)
  })

  app.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format)',
      response: { 200: { description: 'Prometheus text', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
    config: { rateLimit: false },
  }, async (_request, reply) => {
    let poolText = ''
    try {
      poolRegister.resetMetrics()
      for (const p of await pool.listPools()) {
        // The usage figures only: no least-used list, which a scrape would throw away.
        const s = await pool.stats(p.name, 0)
        const l = { pool: p.name }
        size.set(l, p.size)
        for (const state of ['active', 'available', 'cooling', 'disabled'] as const) tokensByState.set({ ...l, state }, p[state])
        active.set(l, p.active)
        available.set(l, p.available)
        waiting.set(l, p.waiting)
        windowStart.set(l, s.windowStartedAt.getTime() / 1000)
        windowReset.set(l, s.windowResetsAt.getTime() / 1000)
        windowAllocations.set(l, s.allocationsInWindow)
        usageCount.set({ ...l, stat: 'min' }, s.usageCount.min)
        usageCount.set({ ...l, stat: 'max' }, s.usageCount.max)
        usageCount.set({ ...l, stat: 'mean' }, s.usageCount.mean)
      }
      databaseUp.set(1)
      poolText = await poolRegister.metrics()
    } catch {
      // Better no figure than a stale or made-up one; the process metrics still answer.
      databaseUp.set(0)
    }
    return await reply.type(register.contentType).send(await register.metrics() + poolText)
  })
}, { name: 'metrics' })
