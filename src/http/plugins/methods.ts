import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { sendMethodNotAllowed } from './errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The methods some route answers on this concrete path (no query string); [] when none does. */
    methodsAllowedFor: (path: string) => string[]
  }
}

interface Route {
  pattern: string
  segments: string[]
  /** per segment: 0 static, 1 `:param`, 2 `*`; the lowest matching route names the resource, as in the router */
  rank: number[]
  methods: Set<string>
}

/**
 * 405 with Allow for a known path asked with another method. Fastify answers 404 there, or worse, routes
 * GET /api/tokens/allocate to GET /api/tokens/:token_id and answers 422 about a token id. Register right
 * after `errors`: only routes added after this plugin are seen.
 */
export default fp(async function methods (app: FastifyInstance) {
  const routes = new Map<string, Route>()

  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      // Fastify adds HEAD for every GET; Allow names what was declared.
      if (method === 'HEAD') continue
      let entry = routes.get(route.url)
      if (entry === undefined) {
        const segments = route.url.split('/')
        entry = { pattern: route.url, segments, rank: segments.map(rankOf), methods: new Set() }
        routes.set(route.url, entry)
      }
      entry.methods.add(method)
    }
  })

  /** The routes that own a path: of those matching it, the most specific (a path names one resource). */
  function owners (path: string): Route[] {
    const segments = path.split('/')
    let best: Route[] = []
    for (const route of routes.values()) {
      if (!matches(route.segments, segments)) continue
      const order = best[0] === undefined ? -1 : compare(route.rank, best[0].rank)
      if (order < 0) best = [route]
      else if (order === 0) best.push(route)
    }
    return best
  }
  const methodsOf = (owned: Route[]) => [...new Set(owned.flatMap((r) => [...r.methods]))].sort()

  app.decorate('methodsAllowedFor', (path: string) => methodsOf(owners(path)))

  /**
   * Per parametric pattern, the routes that could own some of the paths it catches: those
   * more specific than it somewhere. Most reads (a token by id) then check a handful of
   * routes, or none, instead of every route.
   */
  const rivalsOf = new Map<string, Route[]>()
  function rivals (pattern: string): Route[] {
    let found = rivalsOf.get(pattern)
    if (found === undefined) {
      const self = routes.get(pattern)
      const all = [...routes.values()].filter((r) => r !== self)
      found = self === undefined || self.segments.includes('*')
        ? all
        : all.filter((r) => (r.segments.length === self.segments.length || r.segments.at(-1) === '*') && compare(r.rank, self.rank) <= 0)
      rivalsOf.set(pattern, found)
    }
    return found
  }

  app.addHook('onRequest', async (request, reply) => {
    const pattern = request.routeOptions.url
    // Only a parametric route can have caught a path that a more specific route owns for other methods.
    if (pattern === undefined || !/[:*]/.test(pattern)) return
    const candidates = rivals(pattern)
    if (candidates.length === 0) return
    const path = request.url.split('?')[0] ?? ''
    const segments = path.split('/')
    if (!candidates.some((r) => matches(r.segments, segments))) return
    const owned = owners(path)
    if (owned.length === 0 || owned.some((r) => r.pattern === pattern)) return
    const allowed = methodsOf(owned)
    if (!allowed.includes(request.method)) return sendMethodNotAllowed(reply, request.method, path, allowed)
  })
}, { name: 'methods', dependencies: ['errors'] })

const rankOf = (segment: string) => segment === '*' ? 2 : segment.includes(':') ? 1 : 0

function compare (a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** `:param` (with or without a regex) stands for one non-empty segment, a trailing `*` for the rest. */
function matches (pattern: string[], path: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i] ?? ''
    const got = path[i]
    if (want === '*' && i === pattern.length - 1) return true
    if (got === undefined) return false
    if (want.includes(':') ? got === '' : want !== got) return false
  }
  return pattern.length === path.length
}
