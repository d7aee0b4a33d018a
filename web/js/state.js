// What every part of the dashboard reads: the pool shown and its model, the list of pools,
// the grid's filter and the server's clock. Importers see each change (ES module bindings
// are live) but assign nothing: the functions here are the only writers.
import { shortId } from './format.js'
import { PoolModel } from './model.js'

/** every pool, as GET /api/pools answers */
export let pools = []
/** the pool shown */
export let current = poolFromHash() ?? 'default'
export let model = new PoolModel(current)
/** bumped by every pool switch: answers and events for the pool shown before are dropped */
export let generation = 0
export const filter = { text: '', leasedOnly: false }

/** server clock − browser clock, ms; only used when they differ by more than the Date header's 1 s grain */
let skew = 0
export const now = () => Date.now() + skew
export const poolPath = (name = current) => `/api/pools/${encodeURIComponent(name)}`

export function poolFromHash () {
  const m = /(?:^#|&)pool=([^&]*)/.exec(window.location.hash)
  if (!m) return null
  try { return decodeURIComponent(m[1]) || null } catch { return null }
}

export const tokenName = (id) => {
  const t = model.byId.get(id)
  return t ? `Token ${t.n}` : `Token ${shortId(id)}`
}

export function setPools (list) {
  pools = list
}

/** @param {number} serverTime  the Date header of an answer, ms */
export function syncClock (serverTime) {
  const d = serverTime - Date.now()
  skew = Math.abs(d) > 2000 ? d : 0
}

// What a switch also resets (the details panel, the feed, the stream) is given by app.js:
// those modules import this one, so this one cannot import them.
const onSwitch = []
export function afterSwitch (fn) {
  onSwitch.push(fn)
}

export function switchPool (name) {
  if (name === current) return
  current = name
  generation++
  model = new PoolModel(name)
  for (const fn of onSwitch) fn()
}
