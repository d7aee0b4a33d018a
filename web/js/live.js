// The pool shown, kept in step with the server. Live updates come from
// /api/events?pool=<name> (server-sent events); a re-sync from GET /api/pools/:pool/tokens
// runs after every (re)connect, on `reset`, and on a timer, so the page stays right without
// the stream too. Lease expiry and cooldown ends are shown by the clock, with no event needed.
import { adminToken } from './admin.js'
import { api, describeError } from './api.js'
import { addFeed } from './feed-list.js'
import { $, say } from './page.js'
import { choosePool, loadPools, renderPools } from './pools.js'
import { invalidate } from './render.js'
import { current, generation, model, now, poolPath, pools, syncClock } from './state.js'

const RESYNC_LIVE_MS = 30_000
// A big pool's list is megabytes: while the stream is live, re-read it less often.
const RESYNC_LIVE_BIG_MS = 300_000
const BIG_POOL = 10_000
const RESYNC_OFFLINE_MS = 5_000
// Joining the queue sends no event: the pool's waiting count is read this often (one small row).
const WAITING_MS = 2_000
const WAITING_BIG_MS = 10_000
const EVENT_TYPES = ['allocated', 'renewed', 'released', 'cleared', 'cooling', 'disabled', 'enabled', 'pool_changed', 'reset']

let syncing = null
let syncAgain = false
/** events that arrived while a snapshot was in flight, re-applied on top of it */
let pending = null

export async function resync () {
  if (syncing) {
    syncAgain = true
    return await syncing
  }
  syncing = (async () => {
    const gen = generation
    pending = []
    try {
      const token = adminToken()
      const [list, stats] = await Promise.all([
        api(`${poolPath()}/tokens`, { adminToken: token }),
        api(`${poolPath()}/stats?least_used_limit=1`),
      ])
      if (gen !== generation) return
      if (list.serverTime !== null) syncClock(list.serverTime)
      model.load(list.data, list.meta)
      model.loadStats(stats.data)
      for (const [type, data] of pending) apply(type, data, false)
      if (liveState === 'offline' || liveState === 'error') setLive(source ? 'reconnecting' : 'offline')
      invalidate()
    } catch (err) {
      if (gen !== generation) return
      if (err.status === 404 && err.code === 'not_found') {
        say(`The pool “${current}” does not exist (any more): showing “default”.`, 'error')
        if (current !== 'default') choosePool('default')
      } else setLive('error', describeError(err))
    } finally {
      pending = null
      syncing = null
      lastSync = Date.now()
    }
    loadPools()
    if (syncAgain) {
      syncAgain = false
      await resync()
    }
  })()
  return await syncing
}

/** Applies one event to the model; true when something shown changed. */
function apply (type, data, live) {
  let changed = null
  switch (type) {
    case 'allocated': changed = model.applyAllocated(data); break
    case 'renewed': changed = model.applyRenewed(data); break
    case 'released':
    case 'cleared': changed = model.applyEnded(data); break
    case 'cooling':
    case 'disabled':
    case 'enabled': changed = model.applyToken(data); break
    case 'pool_changed': if (live) poolChanged(data); break
    case 'reset': if (live) resync(); break
  }
  if (changed === undefined && live) resync() // a token we have never seen: the pool grew
  return Boolean(changed)
}

export function poolChanged (p) {
  if (p.deleted) {
    say(`The pool “${p.name}” was deleted: showing “default”.`, 'error')
    loadPools()
    if (p.name === current) choosePool('default')
    return
  }
  const i = pools.findIndex((x) => x.name === p.name)
  if (i >= 0) pools[i] = p
  else pools.push(p)
  renderPools()
  if (p.name === current && typeof p.waiting === 'number' && p.waiting !== model.waiting) {
    model.waiting = p.waiting
    invalidate(false)
  }
  // Grown or shrunk: the token set changed.
  if (p.name === current && p.total !== model.tokens.length) resync()
}

function onEvent (type, e, gen) {
  if (gen !== generation) return
  let data
  try { data = JSON.parse(e.data) } catch { return }
  if (pending && type !== 'pool_changed' && type !== 'reset') pending.push([type, data])
  addFeed(type, data)
  if (apply(type, data, true)) invalidate()
  if ((type === 'allocated' || type === 'renewed') && data.user_id === null && data.holder && adminToken()) reveal(data.token_id)
}

// The stream hides user ids (EventSource can't send the admin token): with the token, read
// the holders of new leases back, a few at a time; a burst is cheaper as one re-sync.
const REVEAL_MAX = 20
const toReveal = new Set()
let revealTimer = 0
function reveal (tokenId) {
  toReveal.add(tokenId)
  if (revealTimer) return
  revealTimer = setTimeout(async () => {
    revealTimer = 0
    const ids = [...toReveal]
    toReveal.clear()
    const gen = generation
    if (ids.length > REVEAL_MAX) {
      if (model.tokens.length <= BIG_POOL) resync()
      return
    }
    const token = adminToken()
    const answers = await Promise.allSettled(ids.map((id) => api(`${poolPath()}/tokens/${id}`, { adminToken: token })))
    if (gen !== generation) return
    let changed = false
    for (const a of answers) if (a.status === 'fulfilled' && a.value.data.current_user_id) changed = Boolean(model.applyToken(a.value.data)) || changed
    if (changed) invalidate(false)
  }, 250)
}

let liveState = 'connecting'
function setLive (state, detail) {
  liveState = state
  const el = $('live')
  el.dataset.state = state
  el.textContent = {
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    offline: `Polling every ${RESYNC_OFFLINE_MS / 1000} s`,
    error: `Cannot reach the service${detail ? ': ' + detail : ''}`,
  }[state]
}

let source = null
let reconnectTimer = 0
let connectedAt = 0
/**
 * Opens the pool's event stream. The snapshot is read once the stream is open (so that no
 * change falls between the two), and again at every reconnect.
 */
export function connect () {
  clearTimeout(reconnectTimer)
  connectedAt = Date.now()
  setLive('connecting')
  if (source) {
    source.close()
    source = null
  }
  if (typeof window.EventSource === 'undefined') {
    setLive('offline')
    return
  }
  const gen = generation
  const es = new window.EventSource(`/api/events?pool=${encodeURIComponent(current)}`)
  source = es
  es.addEventListener('open', () => {
    if (gen !== generation) return
    setLive('live')
    // Whatever happened while we were away (or before the first open) comes from the snapshot.
    resync()
  })
  es.addEventListener('error', () => {
    if (gen !== generation) return
    if (es.readyState === window.EventSource.CLOSED) {
      // The browser gave up (e.g. no /api/events on this server): poll, and try again later.
      setLive('offline')
      source = null
      reconnectTimer = setTimeout(connect, 15_000)
    } else setLive('reconnecting')
  })
  for (const type of EVENT_TYPES) es.addEventListener(type, (e) => { onEvent(type, e, gen) })
}

let lastWaiting = 0
let readingWaiting = false
/** Reads the pool shown (GET /api/pools/:pool): its waiting count, and its settings and counts for the switcher. */
async function refreshWaiting () {
  if (readingWaiting) return
  readingWaiting = true
  lastWaiting = Date.now()
  const gen = generation
  try {
    const { data } = await api(poolPath())
    if (gen !== generation) return
    const i = pools.findIndex((x) => x.name === data.name)
    if (i >= 0) pools[i] = data
    if (data.waiting !== model.waiting) {
      model.waiting = data.waiting
      invalidate(false)
    }
  } catch {
    // The re-sync reports an unreachable service; the count stays as last read.
  } finally {
    readingWaiting = false
  }
}

let lastSync = 0
export function tick () {
  // Leases end at their own expires_at, and cooldowns at cooling_until, with or without an event.
  const expired = model.expire(now())
  const t = now()
  // Counts went back to 0 at the window's end: fetch them (again every 5 s until the server has rolled it).
  const windowEnded = model.windowResetsAt && t >= model.windowResetsAt + 1000
  const live = liveState === 'live' && !windowEnded
  const every = !live ? RESYNC_OFFLINE_MS : model.tokens.length > BIG_POOL ? RESYNC_LIVE_BIG_MS : RESYNC_LIVE_MS
  // A stream being opened brings a snapshot when it opens: wait for it a little.
  const opening = liveState === 'connecting' && Date.now() - connectedAt < 3000
  if (Date.now() - lastSync >= every && !syncing && !opening) {
    lastSync = Date.now()
    resync()
  }
  const waitingEvery = model.tokens.length > BIG_POOL ? WAITING_BIG_MS : WAITING_MS
  if (Date.now() - lastWaiting >= waitingEvery && !syncing && !document.hidden) refreshWaiting()
  if (expired.length > 0) invalidate()
  else invalidate(false)
}
