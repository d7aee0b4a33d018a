// The admin token: typed in the Admin panel (or in the dialog an admin action opens on a
// 401), kept in sessionStorage for this tab only, and sent as Authorization: Bearer.
import { ApiError } from './api.js'

const KEY = 'token-pool.admin-token'

export const adminToken = () => sessionStorage.getItem(KEY) ?? undefined

export function setAdminToken (token) {
  if (token) sessionStorage.setItem(KEY, token)
  else sessionStorage.removeItem(KEY)
  document.dispatchEvent(new CustomEvent('admin-token'))
}

export class Cancelled extends Error {}

/**
 * Runs an admin call with the stored token. On 401 it asks for the token (the server has
 * an ADMIN_TOKEN and ours is missing or wrong) and tries again, up to three times.
 * @param {(token: string|undefined) => Promise<T>} fn
 * @param {(text: string) => void} warn
 * @returns {Promise<T>} rejects with Cancelled when the dialog is cancelled
 * @template T
 */
export async function adminCall (fn, warn) {
  let token = adminToken()
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(token)
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401) || attempt >= 2) throw err
      setAdminToken(undefined)
      if (attempt > 0 || token !== undefined) warn('That admin token was not accepted.')
      token = await askAdminToken()
      if (token === undefined) throw new Cancelled('it needs the admin token')
      setAdminToken(token)
    }
  }
}

/** Resolves to the token typed in the dialog, or undefined when cancelled. */
function askAdminToken () {
  const dialog = document.getElementById('admin-dialog')
  const input = document.getElementById('admin-token')
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
