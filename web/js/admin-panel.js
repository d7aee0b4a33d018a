// The Admin panel: the admin token for this tab, set or forgotten. Either way the pool is
// read again, as the token decides whether user ids show in full.
import { adminToken, setAdminToken } from './admin.js'
import { resync } from './live.js'
import { $, say } from './page.js'

export function setTokenFromForm (e) {
  e.preventDefault()
  const value = $('admin-token-field').value.trim()
  setAdminToken(value || undefined)
  say(value ? 'Admin token set for this tab.' : 'Admin token forgotten.')
  resync()
}

export function forgetToken () {
  $('admin-token-field').value = ''
  setAdminToken(undefined)
  say('Admin token forgotten.')
  resync()
}

export function renderAdminState () {
  const token = adminToken()
  $('admin-state').textContent = token
    ? 'An admin token is set for this tab: admin actions send it, and user ids show in full.'
    : 'No admin token: admin actions ask for it if the server needs one.'
  if (document.activeElement !== $('admin-token-field')) $('admin-token-field').value = token ?? ''
  $('admin-forget').disabled = !token
}
