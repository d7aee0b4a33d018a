import { TokenPoolUnreachableError } from './errors.js'
import type { EventsOptions } from './options.js'
import { parseSse } from './sse.js'
import { query, toError, type Transport } from './transport.js'
import type { PoolEvent, PoolEventType } from './types.js'

/** GET /api/events as a stream of events, reconnecting with Last-Event-ID (TokenPoolClient.events). */
export async function * watchEvents (http: Transport, options: EventsOptions): AsyncGenerator<PoolEvent, void, undefined> {
  const stop = new AbortController()
  const signal = options.signal === undefined ? stop.signal : AbortSignal.any([stop.signal, options.signal])
  const path = '/api/events' + query({ pool: options.pool })
  let lastEventId = options.lastEventId
  let retryMs = 1000
  try {
    while (!signal.aborted) {
      // One controller per connection: leaving it (the loop ended, or the stream dropped) aborts it.
      const connection = new AbortController()
      let res: Response
      try {
        res = await http.fetch(http.url + path, {
          // With the admin token, other users' ids are shown, not hidden.
          headers: { accept: 'text/event-stream', ...http.auth(), ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) },
          signal: AbortSignal.any([signal, connection.signal]),
        })
      } catch (err) {
        if (signal.aborted) return
        if (options.reconnect === false) throw new TokenPoolUnreachableError(http.url, err)
        await sleep(retryMs, signal)
        continue
      }
      if (!res.ok || res.body === null) {
        const err = await toError(res)
        // Busy or briefly without its database: come back later, as for a dropped stream.
        const transient = err.status === 429 || err.status >= 500
        if (!transient || options.reconnect === false) throw err
        await sleep(err.retryAfterSeconds === undefined ? retryMs : err.retryAfterSeconds * 1000, signal)
        continue
      }
      const messages = parseSse(res.body)
      try {
        for (;;) {
          const { value: message, done } = await messages.next()
          if (done) break
          if (message.retry !== undefined) retryMs = message.retry
          if (message.id !== undefined) lastEventId = message.id
          if (message.id !== undefined && isEventType(message.event) && message.data !== '') {
            yield { id: message.id, type: message.event, data: JSON.parse(message.data) } as PoolEvent
          }
        }
      } catch (err) {
        if (signal.aborted) return
        if (options.reconnect === false) throw new TokenPoolUnreachableError(http.url, err)
      } finally {
        // Leaving the loop (or a dropped stream) ends this connection for good.
        connection.abort()
        await messages.return(undefined)
      }
      if (options.reconnect === false) return
      await sleep(retryMs, signal)
    }
  } finally {
    stop.abort()
  }
}

const EVENT_TYPES = new Set<string>(['allocated', 'renewed', 'released', 'cleared', 'cooling', 'disabled', 'enabled', 'pool_changed', 'reset'] satisfies PoolEventType[])
const isEventType = (s: string): s is PoolEventType => EVENT_TYPES.has(s)

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done () {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}
