// The pool switcher, remembered in the URL hash (#pool=<name>), and the shown pool's
// settings beside it, with the resize form's state.
import { api, describeError } from './api.js'
import { seconds } from './format.js'
import { $, say } from './page.js'
import { current, generation, pools, setPools, switchPool } from './state.js'

export async function loadPools () {
  const gen = generation
  try {
    const { data } = await api('/api/pools')
    setPools(data)
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
export function renderPools () {
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
export function choosePool (name) {
  const hash = `#pool=${encodeURIComponent(name)}`
  if (window.location.hash === hash) switchPool(name)
  else window.location.hash = hash
}
