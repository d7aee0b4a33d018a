// The dashboard: wires the model, the grid, the chart, the details panel and the actions
// to the API. Live updates come from /api/events (server-sent events); a re-sync from
// GET /api/tokens runs after every (re)connect and on a timer, so the page stays right
// without the stream too, and expiry is shown by the clock, with no event needed.
import { api, ApiError, describeError } from './api.js'
import { drawChart } from './chart.js'
import { clock, newUuid, plural, shortId, when } from './format.js'
import { Grid } from './grid.js'
import { PoolModel } from './model.js'

const RESYNC_LIVE_MS = 30_000
const RESYNC_OFFLINE_MS = 5_000
const HISTORY_PAGE = 20
const ADMIN_KEY = 'token-pool.admin-token'

const $ = (id) => document.getElementById(id)
const model = new PoolModel()
const grid = new Grid($('grid'), (index) => { openDetails(index) })

/** server clock − browser clock, ms; only used when they differ by more than the Date header's 1 s grain */
let skew = 0
const now = () => Date.now() + skew

// ---- rendering, at most once per frame ------------------------------------------------

let dirty = false
let chartDirty = true
let lastChart = 0
let builtLayout = -1

function invalidate (chart = true) {
  chartDirty ||= chart
  if (dirty) return
  dirty = true
  window.requestAnimationFrame(render)
}

function render () {
  dirty = false
  if (builtLayout !== model.layoutVersion) {
    grid.build(model.tokens)
    builtLayout = model.layoutVersion
    $('pool-size').textContent = `(${model.tokens.length})`
  }
  const s = model.summary()
  grid.update(model.tokens, now(), s.min)
  $('c-active').textContent = String(s.active)
  $('c-available').textContent = String(s.available)
  $('c-allocations').textContent = String(model.allocationsInWindow)
  renderReset()
  // The chart is the costliest part; a burst of events redraws it a few times a second at most.
  if (chartDirty && performance.now() - lastChart > 250) {
    drawChart($('chart'), model.distribution(), s.total)
    chartDirty = false
    lastChart = performance.now()
  } else if (chartDirty) setTimeout(() => invalidate(), 260)
  renderDetails()
}

function renderReset () {
  $('c-reset').textContent = model.windowResetsAt ? clock((model.windowResetsAt - now()) / 1000) : '–'
}

// ---- feedback ---------------------------------------------------------------------------

function say (text, kind = 'ok') {
  const p = $('feedback')
  p.textContent = text
  p.dataset.kind = kind
}

// ---- sync and live events ----------------------------------------------------------------

let syncing = null
let syncAgain = false
/** events that arrived while a snapshot was in flight, re-applied on top of it */
let pending = null

async function resync () {
  if (syncing) {
    syncAgain = true
    return await syncing
  }
  syncing = (async () => {
    pending = []
    try {
      const [list, stats] = await Promise.all([api('/api/tokens'), api('/api/stats')])
      if (list.serverTime !== null) {
        const d = list.serverTime - Date.now()
        skew = Math.abs(d) > 2000 ? d : 0
      }
      model.load(list.data, list.meta)
      model.loadStats(stats.data)
      for (const [type, data] of pending) apply(type, data)
      if (liveState === 'offline') setLive('offline')
      invalidate()
    } catch (err) {
      setLive('error', describeError(err))
    } finally {
      pending = null
      syncing = null
    }
    if (syncAgain) {
      syncAgain = false
      await resync()
    }
  })()
  return await syncing
}

function apply (type, data) {
  const changed = type === 'allocated' ? model.applyAllocated(data) : model.applyEnded(data)
  if (changed === undefined) resync() // a token we have never seen: the pool grew
  return changed
}

function onEvent (type, e) {
  let data
  try { data = JSON.parse(e.data) } catch { return }
  if (pending) pending.push([type, data])
  if (apply(type, data)) invalidate()
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
function connect () {
  if (typeof window.EventSource === 'undefined') {
    setLive('offline')
    return
  }
  source = new window.EventSource('/api/events')
  source.addEventListener('open', () => {
    setLive('live')
    // Whatever happened while we were away (or before the first open) comes from the snapshot.
    resync()
  })
  source.addEventListener('error', () => {
    if (source.readyState === window.EventSource.CLOSED) {
      // The browser gave up (e.g. no /api/events on this server): poll, and try again later.
      setLive('offline')
      source = null
      setTimeout(connect, 15_000)
    } else setLive('reconnecting')
  })
  for (const type of ['allocated', 'released', 'cleared']) source.addEventListener(type, (e) => { onEvent(type, e) })
}

let lastSync = 0
function tick () {
  // Leases end at their own expires_at, with or without an event.
  const expired = model.expire(now())
  const t = now()
  // Counts went back to 0 at the window's end: fetch them (again every 5 s until the server has rolled it).
  const windowEnded = model.windowResetsAt && t >= model.windowResetsAt + 1000
  const every = liveState === 'live' && !windowEnded ? RESYNC_LIVE_MS : RESYNC_OFFLINE_MS
  if (Date.now() - lastSync >= every) {
    lastSync = Date.now()
    resync()
  }
  if (expired.length > 0) invalidate()
  else invalidate(false)
}

// ---- details panel ------------------------------------------------------------------------

let detailsIndex = -1
let historyCursor = null
/** bumped by every reload, so an answer for an older view of the history is dropped */
let historySeq = 0
/** the lease the shown history was loaded for: a new one, an end or an expiry reloads it */
let historyLease = ''
let historyTimer = 0

async function openDetails (index) {
  const t = model.tokens[index]
  if (!t) return
  detailsIndex = index
  historyLease = leaseKey(t)
  grid.select(index)
  const panel = $('details')
  panel.hidden = false
  $('details-title').textContent = `Token ${t.n}`
  renderDetails()
  invalidate(false)
  $('details-title').focus()
  if (window.matchMedia('(max-width: 60rem)').matches) panel.scrollIntoView({ behavior: 'smooth', block: 'start' })
  await reloadHistory()
}

const leaseKey = (t) => `${t.id}|${t.status}|${t.user}|${t.startedAt}`

async function reloadHistory () {
  const t = model.tokens[detailsIndex]
  if (!t) return
  historySeq++
  historyCursor = null
  $('history').tBodies[0].replaceChildren()
  await loadHistory(t.id, true)
}

function closeDetails () {
  clearTimeout(historyTimer)
  $('details').hidden = true
  detailsIndex = -1
  grid.select(-1)
  invalidate(false)
  grid.focusSelected()
}

let detailsKey = ''
function renderDetails () {
  if (detailsIndex < 0) return
  const t = model.tokens[detailsIndex]
  if (!t) return closeDetails()
  const least = model.summary().min === t.usage
  const left = t.status === 'active' ? clock((t.expiresAt - now()) / 1000) : '—'
  const key = [t.id, t.status, t.user, t.startedAt, t.usage, least, left].join('|')
  if (key === detailsKey) return
  detailsKey = key
  if (leaseKey(t) !== historyLease) {
    historyLease = leaseKey(t)
    // Events come in bursts: one reload for the lot.
    clearTimeout(historyTimer)
    historyTimer = setTimeout(reloadHistory, 300)
  }
  const rows = [
    ['Id', t.id, 'mono'],
    ['Status', t.status === 'active' ? 'leased' : 'available'],
    ['Holder', t.user ?? '—', 'mono'],
    ['Started', t.status === 'active' ? when(t.startedAt) : '—'],
    ['Expires', t.status === 'active' ? when(t.expiresAt) : '—'],
    ['Time left', left],
    ['Uses this window', `${t.usage}${least ? ' (least used)' : ''}`],
  ]
  const frag = document.createDocumentFragment()
  for (const [k, v, cls] of rows) {
    const dt = document.createElement('dt')
    dt.textContent = k
    const dd = document.createElement('dd')
    dd.textContent = v
    if (cls) dd.className = cls
    frag.append(dt, dd)
  }
  $('details-fields').replaceChildren(frag)
  $('release').hidden = t.status !== 'active'
}

async function loadHistory (tokenId, first) {
  const more = $('history-more')
  more.disabled = true
  const seq = historySeq
  try {
    const q = new URLSearchParams({ limit: String(HISTORY_PAGE) })
    if (historyCursor) q.set('cursor', historyCursor)
    const { data, meta } = await api(`/api/tokens/${tokenId}/history?${q}`)
    if (seq !== historySeq || model.tokens[detailsIndex]?.id !== tokenId) return // a newer view was asked for meanwhile
    const body = $('history').tBodies[0]
    for (const u of data.usages) {
      const tr = document.createElement('tr')
      for (const [text, title] of [[shortId(u.user_id), u.user_id], [when(Date.parse(u.started_at))], [u.released_at ? when(Date.parse(u.released_at)) : '—'], [u.release_reason ?? 'active']]) {
        const td = document.createElement('td')
        td.textContent = text
        if (title) td.title = title
        tr.append(td)
      }
      if (u.release_reason === null) tr.className = 'current'
      body.append(tr)
    }
    historyCursor = meta?.next_cursor ?? null
    $('history-empty').hidden = !(first && data.usages.length === 0)
    more.hidden = historyCursor === null
  } catch (err) {
    say(`Could not load the history: ${describeError(err)}`, 'error')
  } finally {
    more.disabled = false
  }
}

// ---- actions --------------------------------------------------------------------------------

async function allocate (e) {
  e.preventDefault()
  const input = $('user-id')
  const userId = input.value.trim()
  if (userId === '') {
    say('Enter a user id (a UUID), or press “New id”.', 'error')
    input.focus()
    return
  }
  try {
    const { data } = await api('/api/tokens/allocate', { method: 'POST', body: { user_id: userId } })
    model.applyAllocated(data)
    invalidate()
    const t = model.byId.get(data.token_id)
    const evicted = data.evicted_user_id ? ` Evicted ${shortId(data.evicted_user_id)}.` : ''
    say(`Token ${t?.n ?? shortId(data.token_id)} leased to ${shortId(data.user_id)} until ${when(Date.parse(data.expires_at))} (lease ${data.lease_id}).${evicted}`)
  } catch (err) {
    say(`Allocation failed: ${describeError(err)}`, 'error')
  }
}

async function release () {
  const t = model.tokens[detailsIndex]
  if (!t || t.status !== 'active') return
  try {
    const { data } = await api(`/api/tokens/${t.id}/release`, { method: 'POST', body: { user_id: t.user } })
    model.applyEnded(data)
    invalidate()
    say(`Token ${t.n} released by ${shortId(data.user_id)}.`)
  } catch (err) {
    say(`Release failed: ${describeError(err)}`, 'error')
    resync()
  }
}

async function clearAll () {
  const active = model.summary().active
  if (!window.confirm(`End all ${plural(active, 'active lease', 'active leases')} now?`)) return
  let token = sessionStorage.getItem(ADMIN_KEY) ?? undefined
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const { data } = await api('/api/tokens/clear', { method: 'POST', adminToken: token })
      say(`Cleared ${plural(data.cleared_tokens, 'lease', 'leases')}.`)
      await resync()
      return
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        say(`Clear failed: ${describeError(err)}`, 'error')
        return
      }
      sessionStorage.removeItem(ADMIN_KEY)
      if (attempt > 0) say('That admin token was not accepted.', 'error')
      token = await askAdminToken()
      if (token === undefined) {
        say('Clear cancelled: it needs the admin token.', 'error')
        return
      }
      sessionStorage.setItem(ADMIN_KEY, token)
    }
  }
}

/** Resolves to the token typed in the dialog, or undefined when cancelled. */
function askAdminToken () {
  const dialog = $('admin-dialog')
  const input = $('admin-token')
  input.value = ''
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok' && input.value !== '' ? input.value : undefined)
    }, { once: true })
    dialog.returnValue = ''
    dialog.showModal()
    input.focus()
  })
}

// ---- start --------------------------------------------------------------------------------

$('allocate-form').addEventListener('submit', allocate)
$('new-user').addEventListener('click', () => { $('user-id').value = newUuid(); $('user-id').focus() })
$('clear-all').addEventListener('click', clearAll)
$('release').addEventListener('click', release)
$('details-close').addEventListener('click', closeDetails)
$('history-more').addEventListener('click', () => { const t = model.tokens[detailsIndex]; if (t) loadHistory(t.id, false) })
window.addEventListener('resize', () => invalidate())
document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('details').hidden && !$('admin-dialog').open) closeDetails() })

connect()
lastSync = Date.now()
resync()
setInterval(tick, 1000)
