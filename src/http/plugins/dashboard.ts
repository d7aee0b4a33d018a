import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

/** web/ beside src/ and dist/: the same path from src/http/plugins and dist/http/plugins. */
export const WEB_ROOT = fileURLToPath(new URL('../../../web/', import.meta.url))

/**
 * The dashboard at GET /: plain files from web/, no build step. `wildcard: false`
 * registers one route per file found at start, so any other path still gets the
 * API's JSON 404 rather than a static-file miss.
 */
export default async function dashboard (app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: WEB_ROOT,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    // The files change only with a deploy; ETag revalidation keeps a reload cheap and never stale.
    cacheControl: true,
    maxAge: 0,
  })
}
