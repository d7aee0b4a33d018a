// The details panel of the token opened from the grid or the feed: its fields, kept up to
// date with each frame, and its lease history, paged and reloaded when its lease changes.
import { adminToken } from './admin.js'
import { api, describeError } from './api.js'
import { copyButton } from './copy.js'
import { clock, fullDate, shortId } from './format.js'
import { $, say } from './page.js'
import { grid, invalidate } from './render.js'
import { model, now } from './state.js'

const HISTORY_PAGE = 20

let detailsId = null
let historyCursor = null
/** bumped by every reload, so an answer for an older view of the history is dropped */
let historySeq = 0
/** the lease the shown history was loaded for: a new one, an end or an expiry reloads it */
let historyLease = ''
let historyTimer = 0

export async function openDetails (tokenId) {
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

export function closeDetails (focus = true) {
  clearTimeout(historyTimer)
  $('details').hidden = true
  detailsId = null
  grid.select(null)
  invalidate(false)
  if (focus) grid.focusSelected()
}

let detailsKey = ''
export function renderDetails (s) {
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

/** the token whose details are open, if any */
export const shownToken = () => model.byId.get(detailsId)

export function loadOlderHistory () {
  if (detailsId) loadHistory(detailsId, false)
}
