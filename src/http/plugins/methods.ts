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
  segments: string[]
  methods: Set<string>
}

/**
 * 405 with Allow for a known path asked with another method. Fastify answers 404 there, or worse, routes
 * GET /api/tokens/allocate to GET /api/tokens/:token_id and answers 422 about a token id. Register right
 * after `errors`: only routes added after this plugin are seen.
 */
export default fp(async function methods (app: FastifyInstance) {
  const byPattern = new Map<string, Route>()
  // Static paths apart: for the client they name one resource, whatever parametric route also matches them.
  const staticPaths = new Map<string, Set<string>>()

  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      // Fastify adds HEAD for every GET; Allow names what was declared.
      if (method === 'HEAD') continue
      const entry = byPattern.get(route.url) ?? { segments: route.url.split('/'), methods: new Set() }
      entry.methods.add(method)
      byPattern.set(route.url, entry)
      if (!/[:*]/.test(route.url)) staticPaths.set(route.url, entry.methods)
    }
  })

  function methodsAllowedFor (path: string): string[] {
    const exact = staticPaths.get(path)
    if (exact !== undefined) return [...exact].sort()
    const segments = path.split('/')
    const found = new Set<string>()
    for (const route of byPattern.values()) {
      if (matches(route.segments, segments)) for (const m of route.methods) found.add(m)
    }
    return [...found].sort()
  }
  app.decorate('methodsAllowedFor', methodsAllowedFor)

  app.addHook('onRequest', async (request, reply) => {
    const pattern = request.routeOptions.url
    // Only a parametric route can have caught a static path meant for another method.
    if (pattern === undefined || !/[:*]/.test(pattern)) return
    const path = request.url.split('?')[0] ?? ''
    const allowed = staticPaths.get(path)
    if (allowed !== undefined && !allowed.has(request.method)) {
      return sendMethodNotAllowed(reply, request.method, path, [...allowed].sort())
    }
  })
}, { name: 'methods', dependencies: ['errors'] })

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
