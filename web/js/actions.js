// What the buttons and forms do: allocate, and the admin actions on a pool (clear, resize,
// create) and on the token in the details panel (release, cooldown, disable, enable).
import { adminCall, Cancelled } from './admin.js'
import { api, describeError } from './api.js'
import { shownToken } from './details.js'
import { plural, shortId, when } from './format.js'
import { poolChanged, resync } from './live.js'
import { $, say } from './page.js'
import { choosePool, loadPools } from './pools.js'
import { invalidate } from './render.js'
import { current, model, poolPath, tokenName } from './state.js'

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

export async function allocate (e) {
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

export async function release () {
  const t = shownToken()
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

export async function cooldown (e) {
  e.preventDefault()
  const t = shownToken()
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

export async function disable (e) {
  e.preventDefault()
  const t = shownToken()
  if (!t) return
  const reason = $('disable-reason').value.trim()
  const r = await admin('Disable', (token) => api(`/api/tokens/${t.id}/disable`, { method: 'POST', body: reason ? { reason } : {}, adminToken: token }))
  if (!r) return
  applyHealth(r.data)
  $('disable-reason').value = ''
  say(`Token ${t.n} disabled${reason ? `: ${reason}` : ''}.`)
}

export async function enable () {
  const t = shownToken()
  if (!t) return
  const r = await admin('Enable', (token) => api(`/api/tokens/${t.id}/enable`, { method: 'POST', adminToken: token }))
  if (!r) return
  applyHealth(r.data)
  say(`Token ${t.n} enabled.`)
}

export async function clearAll () {
  const active = model.summary().active
  if (!window.confirm(`End all ${plural(active, 'active lease', 'active leases')} of “${current}” now?`)) return
  const r = await admin('Clear', (token) => api(`${poolPath()}/tokens/clear`, { method: 'POST', adminToken: token }))
  if (!r) return
  say(`Cleared ${plural(r.data.cleared_tokens, 'lease', 'leases')}.`)
  await resync()
}

export async function resize (e) {
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

export async function createPool (e) {
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
