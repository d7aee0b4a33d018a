import type { ServerResponse } from 'node:http'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { EventFeed, type StreamEvent } from '../../pool/events.js'
import type { TokenPool } from '../../pool/pool.js'
import { POOL_NAME_PATTERN } from '../../domain/types.js'
import type { Access } from '../plugins/auth.js'
import { translateDbError } from '../../store/sqlstate.js'
import * as present from '../present.js'
import { errors } from '../schemas/common.js'

export interface EventRoutesOptions {
  pool: TokenPool
  access: Access
  /** the process's feed; when absent the route makes one and closes it with the app */
  feed?: EventFeed
  /** ms between heartbeat comments, which keep proxies from closing an idle stream */
  heartbeatMs?: number
}

// A client this far behind is dropped; it reconnects with Last-Event-ID and reads the rest from the table.
const MAX_BUFFERED = 1024 * 1024
const EVENT_ID = '^[0-9]{1,15}$'
const CLOSE_GRACE_MS = 1000

// For OpenAPI: how a stream begins, with one event.
const STREAM_START = 'retry: 1000\n\nid: 43\nevent: enabled\ndata: ' + JSON.stringify({
  id: '6f1c1a4e-3d2b-4f7a-9a53-2c1d0e9b8a71',
  pool: 'default',
  label: null,
  status: 'available',
  current_user_id: null,
  lease_id: null,
  started_at: null,
  expires_at: null,
  cooling_until: null,
  disabled_reason: null,
  usage_count: 3,
}) + '\n\n'

/** Server-sent events: every change by any node sharing the database, replayable by id. */
const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, opts) => {
  const feed = opts.feed ?? new EventFeed(opts.pool.db)
  const heartbeatMs = opts.heartbeatMs ?? 15_000
  const streams = new Map<PassThrough, ServerResponse>()

  // Open streams would hold app.close() forever: end each and give it a moment to flush (its
  // stop() then frees the socket, even if the client stopped reading); then stop the feed.
  app.addHook('preClose', async () => {
    await Promise.all([...streams].map(async ([stream, res]) => {
      const flushed = new Promise((resolve) => { res.once('close', resolve).once('finish', resolve) })
      stream.end()
      await Promise.race([flushed, sleep(CLOSE_GRACE_MS)])
    }))
  })
  if (opts.feed === undefined) app.addHook('onClose', async () => { await feed.close() })

  app.get('/api/events', {
    schema: {
      tags: ['events'],
      summary: 'Every change to every pool (or one), from every node, as server-sent events',
      description: 'Each event has an `id:`, an `event:` and a `data:` line of JSON carrying `pool`: ' +
        'allocated and renewed carry the lease as allocate answers it; released (with release_reason) and cleared the ended lease as release answers it; ' +
        'cooling, disabled and enabled the token (flat, with id); pool_changed the pool as GET /api/pools/:pool shows it. ' +
        'A new subscriber gets only what happens next. A client that reconnects with Last-Event-ID (or ?last_event_id=) first gets the events it missed, ' +
        'if they are still kept (at least the last 100,000 and the last hour); if not, one `reset` event: re-read the state.',
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: EVENT_ID, description: 'the id of the last event seen' })) }),
      querystring: Type.Object({
        last_event_id: Type.Optional(Type.String({ pattern: EVENT_ID, description: 'as the Last-Event-ID header' })),
        pool: Type.Optional(Type.String({ pattern: POOL_NAME_PATTERN, description: 'only this pool\'s events' })),
      }),
      response: {
        // The body is a stream, never serialized from a value: the schema only documents it.
        200: {
          description: 'the stream, which does not end: first `retry: 1000`, then the events, and a `: heartbeat` comment every 15 s',
          content: {
            'text/event-stream': {
              schema: Type.String({ examples: [STREAM_START] }),
            },
          },
        },
        ...errors(404, 422, 429, 503),
      },
    },
  }, async (request, reply) => {
    const raw = request.headers['last-event-id'] ?? request.query.last_event_id
    const lastEventId = raw === undefined ? undefined : Number(raw)
    const only = request.query.pool
    if (only !== undefined) await opts.pool.getPool(only)
    const viewer = opts.access.viewer(request)
    const stream = new PassThrough()
    stream.write('retry: 1000\n\n')
    const send = (e: StreamEvent) => {
      if (stream.writableLength > MAX_BUFFERED) {
        stream.end()
        return
      }
      // Every event's data names its pool: a reset names the stream's pool, or null for every pool.
      const data = e.type === 'reset' ? { pool: only ?? null } : eventData(e, viewer)
      if (only !== undefined && e.type !== 'reset' && data.pool !== only) return
      stream.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(data)}\n\n`)
    }
    let unsubscribe: () => void
    try {
      unsubscribe = await feed.subscribe(send, lastEventId)
    } catch (err) {
      stream.destroy()
      throw translateDbError(err, true)
    }
    const heartbeat = setInterval(() => { stream.write(': heartbeat\n\n') }, heartbeatMs)
    const res = reply.raw
    let stopped = false
    const stop = () => {
      if (stopped) return
      stopped = true
      clearInterval(heartbeat)
      unsubscribe()
      streams.delete(stream)
      stream.end()
      // The socket carries this stream only: free it once the stream has flushed, or soon
      // anyway, so that a client that left or stopped reading can't hold app.close().
      const free = () => { res.socket?.destroy() }
      res.once('finish', free)
      setTimeout(free, CLOSE_GRACE_MS).unref()
    }
    streams.set(stream, res)
    stream.on('close', stop)
    stream.on('finish', stop)
    request.raw.on('close', stop)
    res.on('close', stop)
    request.raw.socket.once('end', stop)
    return reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache, no-transform')
      .header('x-accel-buffering', 'no')
      // Never reused once the stream ends, so that ending it (as app.close() does) frees the socket.
      .header('connection', 'close')
      .send(stream as never)
  })
}

function eventData (e: Exclude<StreamEvent, { type: 'reset' }>, viewer: present.Viewer): { pool?: string } {
  switch (e.type) {
    case 'allocated':
    case 'renewed':
      return present.lease(e.lease, viewer)
    case 'released':
    case 'cleared':
      return present.endedLease(e.lease, viewer)
    case 'cooling':
    case 'disabled':
    case 'enabled':
      return present.tokenSummary(e.token, viewer)
    case 'pool_changed':
      return { ...e.pool, pool: e.pool.name }
  }
}

export default eventRoutes
