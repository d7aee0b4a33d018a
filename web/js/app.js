// The dashboard: a pool switcher (remembered in the URL hash, #pool=<name>), and for the
// pool shown its grid, counters, settings, chart, events feed, details panel and actions.
// Live updates come from /api/events?pool=<name> (server-sent events); a re-sync from
// GET /api/pools/:pool/tokens runs after every (re)connect, on `reset`, and on a timer,
// so the page stays right without the stream too. Lease expiry and cooldown ends are
// shown by the clock, with no event needed.
import { adminCall, adminToken, Cancelled, setAdminToken } from './admin.js'
import { api, describeError } from './api.js'
import { drawChart } from './chart.js'
import { describeEvent, FEED_MAX, isRoutine } from './feed.js'
import { clock, fullDate, newUuid, plural, seconds, shortId, when } from './format.js'
import { Grid } from './grid.js'
import { isEmpty, PoolModel } from './model.js'

const RESYNC_LIVE_MS = 30_000
// A big pool's list is megabytes: while the stream is live, re-read it less often.
const RESYNC_LIVE_BIG_MS = 300_000
const BIG_POOL = 10_000
const RESYNC_OFFLINE_MS = 5_000
// Joining the queue sends no event: the pool's waiting count is read this often (one small row).
const WAITING_MS = 2_000
const WAITING_BIG_MS = 10_000
const HISTORY_PAGE = 20
const EVENT_TYPES = ['allocated', 'renewed', 'released', 'cleared', 'cooling', 'disabled', 'enabled', 'pool_changed', 'reset']

const $ = (id) => document.getElementById(id)
const enc = encodeURIComponent

/** every pool, as GET /api/pools answers */
let pools = []
/** the pool shown */
let current = poolFromHash() ?? 'default'
let model = new PoolModel(current)
/** bumped by every pool switch: answers and events for the pool shown before are dropped */
let generation = 0
const grid = new Grid($('grid'), (token) => { openDetails(token.id) })
const filter = { text: '', leasedOnly: false }

/** server clock − browser clock, ms; only used when they differ by more than the Date header's 1 s grain */
let skew = 0
const now = () => Date.now() + skew
const poolPath = (name = current) => `/api/pools/${enc(name)}`

function poolFromHash () {
  const m = /(?:^#|&)pool=([^&]*)/.exec(window.location.hash)
  if (!m) return null
  try { return decodeURIComponent(m[1]) || null } catch { return null }
}

// ---- rendering, at most once per frame ------------------------------------------------

let dirty = false
let chartDirty = true
let lastChart = 0
let builtKey = ''

function invalidate (chart = true) {
  chartDirty ||= chart
  if (dirty) return
  dirty = true
  window.requestAnimationFrame(render)
}

function render () {
  dirty = false
  const filtered = !isEmpty(filter)
  // The filtered view follows every change (a lease that ends leaves "leased only").
  const key = `${generation}|${model.snapshot}|${filtered ? `${filter.text}|${filter.leasedOnly}|${model.version}` : ''}`
  if (key !== builtKey) {
    builtKey = key
    const items = model.view(filter)
    grid.setItems(items)
    $('pool-size').textContent = `(${model.tokens.length})`
    $('shown').textContent = filtered ? `${plural(items.length, 'token', 'tokens')} of ${model.tokens.length} shown` : ''
  }
  const s = model.summary()
  grid.update(now(), { min: s.min, mark: s.markLeast })
  $('c-active').textContent = String(s.active)
  $('c-available').textContent = String(s.available)
  $('c-cooling').textContent = String(s.cooling)
  $('c-disabled').textContent = String(s.disabled)
  $('c-allocations').textContent = String(model.allocationsInWindow)
  renderQueue(s)
  $('least-note').textContent = s.total === 0
    ? ''
    : s.markLeast
      ? `${plural(s.leastCount, 'token is', 'tokens are')} least used (${s.min}×), marked in the corner.`
      : `${s.leastCount} of ${s.total} tokens share the lowest count (${s.min}×): too many to mark.`
  renderReset()
  // The chart is the costliest part; a burst of events redraws it a few times a second at most.
  if (chartDirty && performance.now() - lastChart > 250) {
    drawChart($('chart'), model.distribution(), s.total)
    chartDirty = false
    lastChart = performance.now()
  } else if (chartDirty) setTimeout(() => invalidate(), 260)
  renderDetails(s)
}

/** The queue (rule 12): how many wait, and when the next token is due to free. */
function renderQueue (s) {
  const w = $('c-waiting')
  w.textContent = String(model.waiting)
  w.dataset.waiting = model.waiting > 0 ? 'yes' : 'no'
  const n = $('c-next')
  const at = model.nextFree(now())
  if (s.available > 0 && model.waiting === 0) {
    n.textContent = 'free now'
    n.removeAttribute('data-at')
  } else if (at === null) {
    n.textContent = '–'
    n.removeAttribute('data-at')
  } else {
    n.textContent = clock((at - now()) / 1000)
    n.dataset.at = new Date(at).toISOString()
  }
  n.title = at === null
    ? 'No lease or cooldown is due to end'
    : `The earliest lease end or cooldown end, ${fullDate(at)}: the first in the queue is served by then (barring a renewal, a longer cooldown, a disable or a shrink)`
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

const tokenName = (id) => {
  const t = model.byId.get(id)
  return t ? `Token ${t.n}` : `Token ${shortId(id)}`
}

// ---- pools ------------------------------------------------------------------------------

async function loadPools () {
  const gen = generation
  try {
    const { data } = await api('/api/pools')
    pools = data
    renderPools()
    if (gen === generation && !pools.some((p) => p.name === current)) {
      say(`There is no pool named “${current}”: showing “default”.`, 'error')
      choosePool('default')
    }
  } catch (err) {
    say(`Could not list the pools: ${describeError(err)}`, 'error')
  }
}

let poolsShown = ''
function renderPools () {
  const select = $('pool-select')
  // Rebuilt only when something in it changed: rebuilding closes an open drop-down.
  const signature = JSON.stringify([current, pools.map((p) => [p.name, p.size])])
  if (signature !== poolsShown) {
    poolsShown = signature
    fillPools(select)
  }
  renderSettings()
}

function fillPools (select) {
  const options = pools.map((p) => {
    const o = document.createElement('option')
    o.value = p.name
    o.textContent = `${p.name} (${p.size})`
    return o
  })
  if (!pools.some((p) => p.name === current)) {
    const o = document.createElement('option')
    o.value = current
    o.textContent = current
    options.unshift(o)
  }
  select.replaceChildren(...options)
  select.value = current
}

function renderSettings () {
  const p = pools.find((x) => x.name === current)
  $('pool-name').textContent = current
  $('resize-pool').textContent = `“${current}”`
  document.title = current === 'default' ? 'Token Pool' : `${current} · Token Pool`
  const rows = p
    ? [
        ['Size', String(p.size)],
        ['Lease TTL', seconds(p.lease_ttl_seconds)],
        ['Lease max', seconds(p.lease_max_seconds)],
        ['Usage window', `${p.usage_window_hours} h`],
        ['When full', p.on_exhausted === 'evict_oldest' ? 'evict oldest' : 'reject'],
        ['Cooldown max', seconds(p.cooldown_max_seconds)],
        ['User quota', p.user_quota === null ? 'none' : `${p.user_quota} / window`],
        ['Max wait', seconds(p.max_wait_seconds)],
      ]
    : []
  const frag = document.createDocumentFragment()
  for (const [k, v] of rows) {
    const div = document.createElement('div')
    const dt = document.createElement('dt')
    dt.textContent = k
    const dd = document.createElement('dd')
    dd.textContent = v
    div.append(dt, dd)
    frag.append(div)
  }
  $('pool-settings').replaceChildren(frag)
  const managed = current === 'default'
  $('resize-size').disabled = managed
  $('resize').disabled = managed
  $('resize-note').textContent = managed ? 'The default pool’s size comes from POOL_SIZE; change it there and restart.' : ''
  if (p && document.activeElement !== $('resize-size')) $('resize-size').value = String(p.size)
}

/** Puts a pool in the URL; the hashchange that follows switches to it. */
function choosePool (name) {
  const hash = `#pool=${enc(name)}`
  if (window.location.hash === hash) switchPool(name)
  else window.location.hash = hash
}

function switchPool (name) {
  if (name === current) return
  current = name
  generation++
  model = new PoolModel(name)
  builtKey = ''
  closeDetails(false)
  feed.length = 0
  renderFeed()
  renderPools()
  connect()
  invalidate()
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
    const gen = generation
    pending = []
    try {
      const token = adminToken()
      const [list, stats] = await Promise.all([
        api(`${poolPath()}/tokens`, { adminToken: token }),
        api(`${poolPath()}/stats?least_used_limit=1`),
      ])
      if (gen !== generation) return
      if (list.serverTime !== null) {
        const d = list.serverTime - Date.now()
        skew = Math.abs(d) > 2000 ? d : 0
      }
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

function poolChanged (p) {
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
function connect () {
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
  const es = new window.EventSource(`/api/events?pool=${enc(current)}`)
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
function tick () {
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

// ---- the events feed ------------------------------------------------------------------------

/** newest first: { at, type, kind, text, tokenId, routine } */
const feed = []

function addFeed (type, data) {
  const d = describeEvent(type, data, tokenName, when)
  feed.unshift({ at: Date.now(), type, ...d, routine: isRoutine(type, data) })
  if (feed.length > FEED_MAX) feed.length = FEED_MAX
  scheduleFeed()
}

let feedTimer = 0
function scheduleFeed () {
  if (feedTimer) return
  feedTimer = setTimeout(() => { feedTimer = 0; renderFeed() }, 100)
}

function renderFeed () {
  const all = $('feed-all').checked
  const shown = feed.filter((f) => all || !f.routine).slice(0, 50)
  const frag = document.createDocumentFragment()
  for (const f of shown) {
    const li = document.createElement('li')
    li.dataset.kind = f.kind
    const time = document.createElement('time')
    time.dateTime = new Date(f.at).toISOString()
    time.textContent = when(f.at)
    const kind = document.createElement('span')
    kind.className = 'kind'
    kind.textContent = f.kind
    let text
    if (f.tokenId && model.byId.has(f.tokenId)) {
      text = document.createElement('button')
      text.type = 'button'
      text.className = 'link'
      text.dataset.open = f.tokenId
    } else text = document.createElement('span')
    text.textContent = f.text
    li.append(time, kind, text)
    frag.append(li)
  }
  $('feed').replaceChildren(frag)
  $('feed-empty').hidden = shown.length > 0
}

// ---- details panel ------------------------------------------------------------------------

let detailsId = null
let historyCursor = null
/** bumped by every reload, so an answer for an older view of the history is dropped */
let historySeq = 0
/** the lease the shown history was loaded for: a new one, an end or an expiry reloads it */
let historyLease = ''
let historyTimer = 0

async function openDetails (tokenId) {
  const t = model.byId.get(tokenId)
  if (!t) return
  detailsId = tokenId
  historyLease = leaseKey(t)
  grid.select(tokenId)
  const panel = $('details')
  panel.hidden = false
  $('details-title').textContent = `Token ${t.n}`
  detailsKey = ''
  renderDetails(model.summary())
  invalidate(false)
  $('details-title').focus()
  if (window.matchMedia('(max-width: 60rem)').matches) panel.scrollIntoView({ behavior: 'smooth', block: 'start' })
  await reloadHistory()
}

const leaseKey = (t) => `${t.id}|${t.status}|${t.leaseId}|${t.lastLease}`

async function reloadHistory () {
  const t = model.byId.get(detailsId)
  if (!t) return
  historySeq++
  historyCursor = null
  await loadHistory(t.id, true)
}

function closeDetails (focus = true) {
  clearTimeout(historyTimer)
  $('details').hidden = true
  detailsId = null
  grid.select(null)
  invalidate(false)
  if (focus) grid.focusSelected()
}

let detailsKey = ''
function renderDetails (s) {
  if (detailsId === null) return
  const t = model.byId.get(detailsId)
  if (!t) return closeDetails(false)
  const least = s.markLeast && s.min === t.usage
  const left = t.status === 'active' ? clock((t.expiresAt - now()) / 1000) : t.status === 'cooling' ? clock((t.coolingUntil - now()) / 1000) : '—'
  const key = [t.id, t.status, t.user, t.holder, t.leaseId, t.startedAt, t.expiresAt, t.coolingUntil, t.disabledReason, t.label, t.usage, least, left].join('|')
  if (key === detailsKey) return
  detailsKey = key
  if (leaseKey(t) !== historyLease) {
    historyLease = leaseKey(t)
    // Events come in bursts: one reload for the lot.
    clearTimeout(historyTimer)
    historyTimer = setTimeout(reloadHistory, 300)
  }
  const active = t.status === 'active'
  const rows = [
    ['Id', t.id, 'mono', t.id],
    ['Label', t.label ?? '—'],
    ['Status', { active: 'leased', available: 'available', cooling: 'cooling', disabled: 'disabled' }[t.status]],
    ['Holder', active ? (t.user ?? (t.holder ? `holder ${t.holder} (id hidden)` : 'hidden')) : '—', 'mono', active ? t.user : null],
    ['Lease', active && t.leaseId !== null ? String(t.leaseId) : '—', 'mono', active && t.leaseId !== null ? String(t.leaseId) : null],
    ['Started', active ? fullDate(t.startedAt) : '—'],
    ['Expires', active ? fullDate(t.expiresAt) : '—'],
  ]
  if (t.status === 'cooling') rows.push(['Cooling until', fullDate(t.coolingUntil)])
  if (t.status === 'disabled') rows.push(['Disabled because', t.disabledReason ?? '(no reason given)'])
  rows.push(['Time left', left], ['Uses this window', `${t.usage}${least ? ' (least used)' : ''}`])
  const frag = document.createDocumentFragment()
  for (const [k, v, cls, copy] of rows) {
    const dt = document.createElement('dt')
    dt.textContent = k
    const dd = document.createElement('dd')
    dd.dataset.field = k.toLowerCase().replace(/ /g, '-')
    const span = document.createElement('span')
    span.textContent = v
    if (cls) span.className = cls
    dd.append(span)
    if (copy) dd.append(copyButton(copy, k.toLowerCase()))
    frag.append(dt, dd)
  }
  $('details-fields').replaceChildren(frag)
  $('release').hidden = !(active && t.user)
  $('cooldown-form').hidden = t.status === 'disabled'
  $('disable-form').hidden = t.status === 'disabled'
  $('enable').hidden = !(t.status === 'disabled' || t.status === 'cooling')
}

function copyButton (value, what) {
  const b = document.createElement('button')
  b.type = 'button'
  b.className = 'copy'
  b.dataset.copy = value
  b.textContent = 'Copy'
  b.setAttribute('aria-label', `Copy ${what}`)
  b.title = `Copy ${value}`
  return b
}

async function copy (button) {
  const value = button.dataset.copy
  let ok = false
  try {
    await navigator.clipboard.writeText(value)
    ok = true
  } catch {
    // No clipboard API (plain HTTP on a LAN address): the old way, through a selection.
    const area = document.createElement('textarea')
    area.value = value
    area.className = 'sr-only'
    document.body.append(area)
    area.select()
    try { ok = document.execCommand('copy') } catch { ok = false }
    area.remove()
  }
  button.textContent = ok ? 'Copied' : 'Copy failed'
  setTimeout(() => { button.textContent = 'Copy' }, 1500)
  say(ok ? `Copied ${value}.` : `Could not copy ${value}: select it instead.`, ok ? 'ok' : 'error')
}

async function loadHistory (tokenId, first) {
  const more = $('history-more')
  more.disabled = true
  const seq = historySeq
  try {
    const q = new URLSearchParams({ limit: String(HISTORY_PAGE) })
    if (historyCursor) q.set('cursor', historyCursor)
    const { data, meta } = await api(`/api/tokens/${tokenId}/history?${q}`, { adminToken: adminToken() })
    if (seq !== historySeq || detailsId !== tokenId) return // a newer view was asked for meanwhile
    const body = $('history').tBodies[0]
    if (first) body.replaceChildren()
    for (const u of data.usages) {
      const tr = document.createElement('tr')
      const cells = [
        [String(u.lease_id), null, 'mono'],
        [u.user_id ? shortId(u.user_id) : (u.holder ?? 'hidden'), u.user_id ?? (u.holder ? `holder ${u.holder}` : null), 'mono'],
        [fullDate(Date.parse(u.started_at)), u.started_at, null, 'date'],
        [fullDate(Date.parse(u.expires_at)), u.expires_at, null, 'date'],
        [u.released_at ? fullDate(Date.parse(u.released_at)) : '—', u.released_at, null, 'date'],
        [u.release_reason ?? 'active'],
      ]
      for (const [text, title, cls, tdClass] of cells) {
        const td = document.createElement('td')
        if (tdClass) td.className = tdClass
        const span = document.createElement('span')
        span.className = `v${cls ? ' ' + cls : ''}`
        span.textContent = text
        td.append(span)
        if (title) td.title = title
        tr.append(td)
      }
      if (u.user_id) tr.children[1].append(copyButton(u.user_id, 'user id'))
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

/** Runs an admin action; says what happened, or why not. */
async function admin (what, fn) {
  try {
    return await adminCall(fn, (text) => say(text, 'error'))
  } catch (err) {
    if (err instanceof Cancelled) say(`${what} cancelled: it needs the admin token.`, 'error')
    else say(`${what} failed: ${describeError(err)}`, 'error')
    return undefined
  }
}

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
    const { data } = await api(`${poolPath()}/tokens/allocate`, { method: 'POST', body: { user_id: userId } })
    if (data.pool === current) model.applyAllocated(data)
    invalidate()
    const evicted = data.evicted_user_id ? ` Evicted ${shortId(data.evicted_user_id)}.` : ''
    say(`${tokenName(data.token_id)} leased to ${shortId(data.user_id)} until ${when(Date.parse(data.expires_at))} (lease ${data.lease_id}).${evicted}`)
  } catch (err) {
    say(`Allocation failed: ${describeError(err)}`, 'error')
  }
}

async function release () {
  const t = model.byId.get(detailsId)
  if (!t || t.status !== 'active' || !t.user) return
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

/** A token-health answer: { token, ended_lease? } */
function applyHealth (data) {
  if (data.ended_lease) model.applyEnded(data.ended_lease)
  model.applyToken(data.token)
  invalidate()
}

async function cooldown (e) {
  e.preventDefault()
  const t = model.byId.get(detailsId)
  if (!t) return
  const value = Number($('cooldown-seconds').value)
  if (!(value > 0)) {
    say('Enter the cooldown in seconds, more than 0.', 'error')
    $('cooldown-seconds').focus()
    return
  }
  const r = await admin('Cooldown', (token) => api(`/api/tokens/${t.id}/cooldown`, { method: 'POST', body: { seconds: value }, adminToken: token }))
  if (!r) return
  applyHealth(r.data)
  say(`Token ${t.n} cooling until ${when(Date.parse(r.data.token.cooling_until))}.`)
}

async function disable (e) {
  e.preventDefault()
  const t = model.byId.get(detailsId)
  if (!t) return
  const reason = $('disable-reason').value.trim()
  const r = await admin('Disable', (token) => api(`/api/tokens/${t.id}/disable`, { method: 'POST', body: reason ? { reason } : {}, adminToken: token }))
  if (!r) return
  applyHealth(r.data)
  $('disable-reason').value = ''
  say(`Token ${t.n} disabled${reason ? `: ${reason}` : ''}.`)
}

async function enable () {
  const t = model.byId.get(detailsId)
  if (!t) return
  const r = await admin('Enable', (token) => api(`/api/tokens/${t.id}/enable`, { method: 'POST', adminToken: token }))
  if (!r) return
  applyHealth(r.data)
  say(`Token ${t.n} enabled.`)
}

async function clearAll () {
  const active = model.summary().active
  if (!window.confirm(`End all ${plural(active, 'active lease', 'active leases')} of “${current}” now?`)) return
  const r = await admin('Clear', (token) => api(`${poolPath()}/tokens/clear`, { method: 'POST', adminToken: token }))
  if (!r) return
  say(`Cleared ${plural(r.data.cleared_tokens, 'lease', 'leases')}.`)
  await resync()
}

async function resize (e) {
  e.preventDefault()
  const size = Number($('resize-size').value)
  if (!Number.isInteger(size) || size < 1 || size > 1_000_000) {
    say('The size is a whole number from 1 to 1,000,000.', 'error')
    $('resize-size').focus()
    return
  }
  const name = current
  const r = await admin('Resize', (token) => api(poolPath(name), { method: 'PATCH', body: { size }, adminToken: token }))
  if (!r) return
  say(`Pool “${name}” now has ${plural(r.data.size, 'token', 'tokens')}.`)
  poolChanged(r.data)
  await resync()
}

async function createPool (e) {
  e.preventDefault()
  const name = $('create-name').value.trim()
  const size = Number($('create-size').value)
  const ttl = Number($('create-ttl').value)
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) {
    say('A pool name is 1–63 characters of a–z, 0–9, _ and -, starting with a letter or a digit.', 'error')
    $('create-name').focus()
    return
  }
  const body = { name, size, lease_ttl_seconds: ttl, on_exhausted: $('create-policy').value }
  const r = await admin('Creating the pool', (token) => api('/api/pools', { method: 'POST', body, adminToken: token }))
  if (!r) return
  say(`Pool “${name}” created with ${plural(r.data.size, 'token', 'tokens')}.`)
  $('create-name').value = ''
  await loadPools()
  choosePool(name)
}

function renderAdminState () {
  const token = adminToken()
  $('admin-state').textContent = token
    ? 'An admin token is set for this tab: admin actions send it, and user ids show in full.'
    : 'No admin token: admin actions ask for it if the server needs one.'
  if (document.activeElement !== $('admin-token-field')) $('admin-token-field').value = token ?? ''
  $('admin-forget').disabled = !token
}

// ---- start --------------------------------------------------------------------------------

$('allocate-form').addEventListener('submit', allocate)
$('new-user').addEventListener('click', () => { $('user-id').value = newUuid(); $('user-id').focus() })
$('clear-all').addEventListener('click', clearAll)
$('release').addEventListener('click', release)
$('cooldown-form').addEventListener('submit', cooldown)
$('disable-form').addEventListener('submit', disable)
$('enable').addEventListener('click', enable)
$('resize-form').addEventListener('submit', resize)
$('create-form').addEventListener('submit', createPool)
$('admin-token-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const value = $('admin-token-field').value.trim()
  setAdminToken(value || undefined)
  say(value ? 'Admin token set for this tab.' : 'Admin token forgotten.')
  resync()
})
$('admin-forget').addEventListener('click', () => {
  $('admin-token-field').value = ''
  setAdminToken(undefined)
  say('Admin token forgotten.')
  resync()
})
document.addEventListener('admin-token', renderAdminState)
$('details-close').addEventListener('click', () => closeDetails())
$('history-more').addEventListener('click', () => { if (detailsId) loadHistory(detailsId, false) })
$('pool-select').addEventListener('change', (e) => { choosePool(e.target.value) })
window.addEventListener('hashchange', () => { switchPool(poolFromHash() ?? 'default') })
$('filter').addEventListener('input', (e) => { filter.text = e.target.value; invalidate(false) })
$('leased-only').addEventListener('change', (e) => { filter.leasedOnly = e.target.checked; invalidate(false) })
$('feed-all').addEventListener('change', renderFeed)
document.addEventListener('click', (e) => {
  const c = e.target.closest?.('button.copy')
  if (c) copy(c)
  const o = e.target.closest?.('button[data-open]')
  if (o) {
    const i = grid.indexOf(o.dataset.open)
    if (i >= 0) grid.moveFocus(i, false)
    openDetails(o.dataset.open)
  }
})
window.addEventListener('resize', () => { invalidate() })
document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('details').hidden && !$('admin-dialog').open) closeDetails() })

renderAdminState()
renderPools()
renderFeed()
$('pool-select').addEventListener('focus', loadPools)
connect()
loadPools()
setInterval(tick, 1000)
