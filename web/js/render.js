// The pool shown, drawn at most once per frame: its grid, counters, queue and chart, and
// the details panel. Whatever changes what is shown calls invalidate().
import { drawChart } from './chart.js'
import { clock, fullDate, plural } from './format.js'
import { Grid } from './grid.js'
import { isEmpty } from './model.js'
import { $ } from './page.js'
import { filter, generation, model, now } from './state.js'

// The details panel is set by app.js: it needs this module, so this one cannot import it.
let openDetails = () => {}
let renderDetails = () => {}
export const grid = new Grid($('grid'), (token) => { openDetails(token.id) })

/** @param {(tokenId: string) => void} open  @param {(summary: object) => void} draw */
export function showDetailsWith (open, draw) {
  openDetails = open
  renderDetails = draw
}

let dirty = false
let chartDirty = true
let lastChart = 0
// It starts with the generation: a pool switch rebuilds the grid.
let builtKey = ''

export function invalidate (chart = true) {
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
