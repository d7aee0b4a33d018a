import { TokenPoolError } from './errors.js'
import type { CallOptions, ExportQuery } from './options.js'
import { query, type Transport } from './transport.js'
import type { ExportFormat, ExportRow } from './types.js'

/** The body of `<path>?since&until&format` as it arrives, in chunks of text. */
export async function * exportChunks (http: Transport, path: string, filter: ExportQuery & { format?: ExportFormat }, options?: CallOptions): AsyncGenerator<string, void, undefined> {
  const q = query({ since: iso(filter.since), until: iso(filter.until), format: filter.format })
  const format = filter.format ?? 'ndjson'
  const res = await http.open(path + q, format === 'csv' ? 'text/csv' : 'application/x-ndjson', options)
  if (res.body === null) return
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>
      try {
        chunk = await reader.read()
      } catch (err) {
        if (options?.signal?.aborted === true) throw options.signal.reason
        // The service answered: the body broke off, which is a cut export, not an unreachable service.
        throw new TokenPoolError({ code: 'unexpected_response', status: res.status, message: `the export was cut short (${(err as Error).message}); try again` })
      }
      if (chunk.done) return
      yield chunk.value
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
}

/** An NDJSON export's rows, one at a time as its text arrives. */
export async function * exportRows (text: AsyncIterable<string>): AsyncGenerator<ExportRow, void, undefined> {
  let buffer = ''
  for await (const chunk of text) {
    buffer += chunk
    let end: number
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end)
      buffer = buffer.slice(end + 1)
      if (line !== '') yield parseRow(line)
    }
  }
  // Each row ends with a newline: anything left is a row the stream cut short.
  if (buffer.trim() !== '') throw new TokenPoolError({ code: 'unexpected_response', status: 200, message: 'the export was cut short; try again' })
}

/** A CSV export's whole text. */
export async function exportCsv (text: AsyncIterable<string>): Promise<string> {
  let all = ''
  for await (const chunk of text) all += chunk
  return all
}

const iso = (d: string | Date | undefined) => (d instanceof Date ? d.toISOString() : d)

function parseRow (line: string): ExportRow {
  try {
    return JSON.parse(line) as ExportRow
  } catch (err) {
    throw new TokenPoolError({ code: 'unexpected_response', status: 200, message: `an export row is not JSON: ${(err as Error).message}` })
  }
}
