// The dashboard: a pool switcher (remembered in the URL hash, #pool=<name>), and for the
// pool shown its grid, counters, settings, chart, events feed, details panel and actions.
// This entry only wires the parts to the page: state.js holds what they share, live.js
// keeps the pool shown up to date, render.js draws it, and each panel has a module.
import { allocate, clearAll, cooldown, createPool, disable, enable, release, resize } from './actions.js'
import { forgetToken, renderAdminState, setTokenFromForm } from './admin-panel.js'
import { copy } from './copy.js'
import { closeDetails, loadOlderHistory, openDetails, renderDetails } from './details.js'
import { clearFeed, renderFeed } from './feed-list.js'
import { newUuid } from './format.js'
import { connect, tick } from './live.js'
import { $ } from './page.js'
import { choosePool, loadPools, renderPools } from './pools.js'
import { grid, invalidate, showDetailsWith } from './render.js'
import { afterSwitch, filter, poolFromHash, switchPool } from './state.js'

showDetailsWith(openDetails, renderDetails)
afterSwitch(() => {
  closeDetails(false)
  clearFeed()
  renderPools()
  connect()
  invalidate()
})

$('allocate-form').addEventListener('submit', allocate)
$('new-user').addEventListener('click', () => { $('user-id').value = newUuid(); $('user-id').focus() })
$('clear-all').addEventListener('click', clearAll)
$('release').addEventListener('click', release)
$('cooldown-form').addEventListener('submit', cooldown)
$('disable-form').addEventListener('submit', disable)
$('enable').addEventListener('click', enable)
$('resize-form').addEventListener('submit', resize)
$('create-form').addEventListener('submit', createPool)
$('admin-token-form').addEventListener('submit', setTokenFromForm)
$('admin-forget').addEventListener('click', forgetToken)
document.addEventListener('admin-token', renderAdminState)
$('details-close').addEventListener('click', () => closeDetails())
$('history-more').addEventListener('click', loadOlderHistory)
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
