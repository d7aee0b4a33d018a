import { PassThrough } from 'node:stream'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Id } from '../../domain/ids.js'
import type { Lease } from '../../domain/types.js'
import type { TokenPool } from '../../pool/pool.js'
import { envelope, toPoolError } from '../plugins/errors.js'
import * as present from '../present.js'

export interface AllocateAsk {
  pool: string
  userId: Id
  waitSeconds: number
  viewer: present.Viewer
}

/**
 * Answers an allocation that may wait (rule 12). Asked with Accept: text/event-stream, a
 * request that queues gets a stream: `queued` events as its place changes, then one
 * `allocated` or `error` event. Any other answer is plain JSON. A caller that goes away
 * leaves the queue, and a lease granted as it went is given back at once.
 */
export async function answerAllocate (pool: TokenPool, request: FastifyRequest, reply: FastifyReply, ask: AllocateAsk) {
  const streamed = ask.waitSeconds > 0 && (request.headers.accept ?? '').toLowerCase().includes('text/event-stream')
  const gone = callerGone(reply)
  let stream: PassThrough | undefined
  let queued = false
  try {
    const lease = await pool.allocate(ask.userId, ask.pool, {
      waitSeconds: ask.waitSeconds,
      signal: gone.signal,
      onQueued: (state) => {
        queued = true
        if (!streamed) return
        if (stream === undefined) {
          stream = new PassThrough()
          reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-cache').header('x-accel-buffering', 'no')
          reply.send(stream)
        }
        stream.write(sse('queued', present.queueState(state)))
      },
    })
    // A caller that hung up as its turn came may not have been seen yet: the grant's
    // database work can keep the event loop from polling its socket (PGlite runs on this
    // thread). One full turn of the loop lets its close arrive before the answer is written.
    if (queued && !gone.signal.aborted) await oneLoopTurn()
    if (gone.signal.aborted) {
      // It queued, so whatever lease it got was granted while it waited.
      if (queued) await giveBack(pool, lease)
      return reply
    }
    if (stream === undefined) return { data: present.lease(lease, ask.viewer) }
    stream.end(sse('allocated', present.lease(lease, ask.viewer)))
    return reply
  } catch (err) {
    // Nobody is there to answer.
    if (gone.signal.aborted) return reply
    if (stream === undefined) throw err
    const error = toPoolError(err as FastifyError)
    const body = envelope(error)
    // A stream has no Retry-After header left to send: its seconds go in the event (503 included).
    if (error.retryAfterSeconds !== undefined && body.error.details === null) body.error.details = { retry_after_seconds: error.retryAfterSeconds }
    stream.end(sse('error', body))
    return reply
  } finally {
    gone.stop()
  }
}

/**
 * Aborts when the caller's connection closes before its answer is written (a waiter that
 * hangs up leaves the queue); stop() once the answer is settled.
 */
export function callerGone (reply: FastifyReply): { signal: AbortSignal, stop: () => void } {
  const gone = new AbortController()
  const onClose = () => { if (!reply.raw.writableEnded) gone.abort() }
  reply.raw.on('close', onClose)
  return { signal: gone.signal, stop: () => { reply.raw.off('close', onClose) } }
}

/** Past the next poll phase: timers come after this one, the check phase after the next poll. */
export async function oneLoopTurn (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0))
  await new Promise((resolve) => setImmediate(resolve))
}

async function giveBack (pool: TokenPool, lease: Lease): Promise<void> {
  await pool.release(lease.tokenId, lease.userId, lease.pool).catch(() => {})
}

function sse (event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}
