/** One message of a text/event-stream, as the WHATWG spec parses it. */
export interface SseMessage {
  /** `event:`; "message" when absent */
  event: string
  data: string
  /** `id:`, when the message set one */
  id: string | undefined
  /** `retry:` in ms, when the message set one */
  retry: number | undefined
}

/** Splits a byte stream into server-sent messages; comments (heartbeats) are skipped. */
export async function * parseSse (body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let message: SseMessage = blank()
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buffer += value
      let end: number
      while ((end = lineEnd(buffer)) >= 0) {
        const line = buffer.slice(0, end)
        buffer = buffer.slice(buffer[end] === '\r' && buffer[end + 1] === '\n' ? end + 2 : end + 1)
        if (line === '') {
          if (message.data !== '' || message.id !== undefined || message.retry !== undefined) yield { ...message, data: message.data.replace(/\n$/, '') }
          message = blank()
          continue
        }
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        const value = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1))
        if (field === 'event') message.event = value
        else if (field === 'data') message.data += value + '\n'
        else if (field === 'id' && !value.includes('\0')) message.id = value
        else if (field === 'retry' && /^\d+$/.test(value)) message.retry = Number(value)
      }
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
}

function blank (): SseMessage {
  return { event: 'message', data: '', id: undefined, retry: undefined }
}

function lineEnd (s: string): number {
  const n = s.indexOf('\n')
  const r = s.indexOf('\r')
  // A lone \r at the very end may be the first half of \r\n: wait for more.
  if (r >= 0 && (n < 0 || r < n)) return r === s.length - 1 ? -1 : r
  return n
}
