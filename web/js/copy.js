// Copy buttons beside ids (the details panel, the history): one click puts the id on the
// clipboard, and the button and the feedback line say whether it worked.
import { say } from './page.js'

export function copyButton (value, what) {
  const b = document.createElement('button')
  b.type = 'button'
  b.className = 'copy'
  b.dataset.copy = value
  b.textContent = 'Copy'
  b.setAttribute('aria-label', `Copy ${what}`)
  b.title = `Copy ${value}`
  return b
}

export async function copy (button) {
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
