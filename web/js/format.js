// Small formatting helpers shared by the grid and the details panel.

/** 83 → "1:23"; 3725 → "1:02:05". */
export function clock (seconds) {
  const s = Math.max(0, Math.ceil(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const r = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`
}

/** Local time, with the date when it is not today. */
export function when (ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—'
  const d = new Date(ms)
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString()} ${time}`
}

export const shortId = (id) => (id ? id.slice(0, 8) : '')

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`

/** A random v4 UUID, also where crypto.randomUUID is missing (plain HTTP on a LAN address). */
export function newUuid () {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** The full local date and time, to the millisecond: "2026-11-23 10:47:56.044". */
export function fullDate (ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—'
  const d = new Date(ms)
  const p = (n, w = 2) => String(n).padStart(w, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

/** 30 → "30 s"; 3600 → "1 h"; 5400 → "1.5 h"; 90 → "1.5 min". */
export function seconds (s) {
  if (s === null || s === undefined) return '—'
  if (s >= 3600) return `${+(s / 3600).toFixed(2)} h`
  if (s >= 60) return `${+(s / 60).toFixed(2)} min`
  return `${+s.toFixed(3)} s`
}
