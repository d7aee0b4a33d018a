// The grid of tokens, virtualised: only the rows in (and near) the scroll box are in the
// DOM, so 100,000 tokens cost as much as the few thousand cells a screen can show. The
// cells (<button>s) are reused as the box scrolls; a cell's DOM is touched only when what
// it shows changed. Above COMPACT_OVER tokens the cells shrink to coloured squares and
// drop their text. Small pools (up to RENDER_ALL tokens) are rendered whole.
import { clock, plural, shortId, when } from './format.js'

const COMPACT_OVER = 400
const RENDER_ALL = 1000
const ENDING_SECONDS = 10
const OVERSCAN_ROWS = 4
// Fixed geometry (px): a virtual grid needs to know where row r is without laying it out.
const FULL = { minWidth: 74, height: 56, gap: 4 }
const COMPACT = { minWidth: 14, height: 14, gap: 2 }

export class Grid {
  /** @param {HTMLElement} root the scroll box  @param {(token: object) => void} onOpen */
  constructor (root, onOpen) {
    this.root = root
    this.onOpen = onOpen
    this.spacer = document.createElement('div')
    this.spacer.className = 'grid-spacer'
    this.win = document.createElement('div')
    this.win.className = 'grid-window'
    this.spacer.append(this.win)
    root.replaceChildren(this.spacer)
    /** @type {object[]} the tokens shown, in order (the pool, or the filtered view) */
    this.items = []
    /** @type {HTMLButtonElement[]} the cells in the DOM, in order */
    this.cells = []
    this.first = 0
    this.cols = 1
    this.focusIndex = 0
    this.selectedId = null
    this.least = { min: 0, mark: false }
    this.now = 0
    this.geo = FULL
    root.addEventListener('click', (e) => {
      const cell = e.target.closest('.cell')
      if (!cell) return
      const index = Number(cell.dataset.index)
      this.moveFocus(index, false)
      this.onOpen(this.items[index])
    })
    root.addEventListener('keydown', (e) => this.onKey(e))
    root.addEventListener('scroll', () => { this.paint() }, { passive: true })
    // The box narrows when the side panels change or the window is resized: columns follow.
    let width = 0
    new window.ResizeObserver(() => {
      if (root.clientWidth === width) return
      width = root.clientWidth
      this.layout()
      this.paint()
    }).observe(root)
  }

  /** A new set of tokens to show (a new pool, a grown pool, or a new filter). */
  setItems (items) {
    this.items = items
    this.compact = items.length > COMPACT_OVER
    this.geo = this.compact ? COMPACT : FULL
    this.root.classList.toggle('compact', this.compact)
    this.root.dataset.total = String(items.length)
    this.focusIndex = Math.min(this.focusIndex, Math.max(0, items.length - 1))
    const help = document.getElementById('grid-help')
    if (help) {
      help.textContent = this.compact
        ? 'A large pool: each square is a token (hover or focus it for a summary); only the rows in view are drawn. Arrow keys move; Enter opens one.'
        : 'Arrow keys move between tokens; Enter opens one. Each cell shows its number, uses in this window, holder and time left.'
    }
    for (const c of this.cells) c._key = ''
    this.layout()
  }

  /** Columns and the scroll height for the box's width; call when it may have changed. */
  layout () {
    const { minWidth, height, gap } = this.geo
    const width = this.root.clientWidth || 600
    this.cols = Math.max(1, Math.floor((width + gap) / (minWidth + gap)))
    const rows = Math.ceil(this.items.length / this.cols)
    this.spacer.style.height = `${Math.max(0, rows * (height + gap) - gap)}px`
    this.win.style.gridTemplateColumns = `repeat(${this.cols}, minmax(0, 1fr))`
    this.win.style.gridAutoRows = `${height}px`
    this.win.style.gap = `${gap}px`
    this.first = -1
  }

  /** Brings the cells in view up to date. `now` is the server's clock in ms; `least` {min, mark}. */
  update (now, least) {
    this.now = now
    this.least = least
    this.paint()
  }

  /** Which items are in the DOM: every one for a small grid, else the rows in view and a few more. */
  range () {
    const n = this.items.length
    if (n <= RENDER_ALL) return [0, n]
    const rowH = this.geo.height + this.geo.gap
    const top = this.root.scrollTop
    const h = this.root.clientHeight || 600
    const firstRow = Math.max(0, Math.floor(top / rowH) - OVERSCAN_ROWS)
    const lastRow = Math.ceil((top + h) / rowH) + OVERSCAN_ROWS
    return [Math.min(n, firstRow * this.cols), Math.min(n, lastRow * this.cols)]
  }

  paint () {
    const [from, to] = this.range()
    const count = to - from
    if (this.cells.length !== count) {
      while (this.cells.length > count) this.cells.pop().remove()
      const frag = document.createDocumentFragment()
      while (this.cells.length < count) {
        const b = document.createElement('button')
        b.type = 'button'
        b.className = 'cell'
        b.tabIndex = -1
        b._key = ''
        this.cells.push(b)
        frag.append(b)
      }
      this.win.append(frag)
    }
    if (from !== this.first) {
      this.first = from
      this.win.style.transform = `translateY(${(from / this.cols) * (this.geo.height + this.geo.gap)}px)`
    }
    let tabStop = false
    for (let k = 0; k < count; k++) {
      const i = from + k
      const cell = this.cells[k]
      this.paintCell(cell, this.items[i], i)
      const stop = i === this.focusIndex
      tabStop ||= stop
      if ((cell.tabIndex === 0) !== stop) cell.tabIndex = stop ? 0 : -1
    }
    // The focused token scrolled out of the DOM: the first cell in view keeps the grid reachable by Tab.
    if (!tabStop && this.cells[0]) this.cells[0].tabIndex = 0
  }

  paintCell (cell, t, i) {
    const now = this.now
    const left = t.status === 'active' ? (t.expiresAt - now) / 1000 : t.status === 'cooling' ? (t.coolingUntil - now) / 1000 : 0
    const state = t.status === 'active' ? (left <= ENDING_SECONDS ? 'ending' : 'active') : t.status
    const isLeast = this.least.mark && t.usage === this.least.min
    const selected = t.id === this.selectedId
    const leftText = t.status === 'active' || t.status === 'cooling' ? clock(left) : t.status === 'disabled' ? 'disabled' : ''
    const key = `${i}|${t.id}|${state}|${isLeast}|${t.usage}|${t.user}|${t.holder}|${t.label}|${t.disabledReason}|${selected}|${this.compact ? '' : leftText}`
    if (cell._key === key) return
    const labelKey = `${t.id}|${state}|${isLeast}|${t.usage}|${t.user}|${t.holder}|${t.label}|${t.disabledReason}|${t.expiresAt}|${t.coolingUntil}`
    cell._key = key
    cell.dataset.index = String(i)
    cell.dataset.id = t.id
    cell.dataset.status = t.status
    cell.className = `cell ${state}${isLeast ? ' least' : ''}${selected ? ' selected' : ''}`
    if (cell._labelKey !== labelKey) {
      cell._labelKey = labelKey
      const text = label(t, isLeast)
      cell.setAttribute('aria-label', text)
      if (this.compact) cell.title = text
      else cell.removeAttribute('title')
    }
    if (selected) cell.setAttribute('aria-current', 'true')
    else cell.removeAttribute('aria-current')
    if (this.compact) {
      if (cell.firstChild) cell.replaceChildren()
      return
    }
    if (cell.children.length !== 4) cell.innerHTML = '<span class="n"></span><span class="count"></span><span class="holder"></span><span class="left"></span>'
    const [n, count, holder, leftEl] = cell.children
    setText(n, String(t.n))
    setText(count, `${t.usage}×`)
    setText(holder, t.status === 'active'
      ? (t.user ? shortId(t.user) : t.holder ?? '')
      : t.status === 'disabled' ? (t.disabledReason ?? '') : (t.label ?? ''))
    setText(leftEl, leftText)
  }

  select (tokenId) {
    this.selectedId = tokenId
  }

  indexOf (tokenId) {
    return this.items.findIndex((t) => t.id === tokenId)
  }

  /** Scrolls item `index` into the box and paints, so that its cell exists. */
  reveal (index) {
    if (this.items.length <= RENDER_ALL) return
    const rowH = this.geo.height + this.geo.gap
    const top = Math.floor(index / this.cols) * rowH
    const box = this.root
    if (top < box.scrollTop) box.scrollTop = top
    else if (top + rowH > box.scrollTop + box.clientHeight) box.scrollTop = top + rowH - box.clientHeight
    this.paint()
  }

  cellAt (index) {
    const k = index - this.first
    return k >= 0 && k < this.cells.length ? this.cells[k] : undefined
  }

  moveFocus (index, focus = true) {
    const n = this.items.length
    if (n === 0) return
    this.focusIndex = Math.max(0, Math.min(n - 1, index))
    this.reveal(this.focusIndex)
    this.paint()
    if (focus) this.cellAt(this.focusIndex)?.focus()
  }

  focusSelected () {
    const i = this.selectedId === null ? -1 : this.indexOf(this.selectedId)
    this.moveFocus(i >= 0 ? i : this.focusIndex)
  }

  /** Roving focus: one tab stop for the whole grid, arrows to move, as in a data grid. */
  onKey (e) {
    const cols = this.cols
    const cell = e.target.closest?.('.cell')
    const at = cell ? Number(cell.dataset.index) : this.focusIndex
    const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, ArrowDown: at + cols, ArrowUp: at - cols, Home: 0, End: this.items.length - 1, PageDown: at + cols * 5, PageUp: at - cols * 5 }
    if (!(e.key in moves)) return
    e.preventDefault()
    this.moveFocus(moves[e.key])
  }
}

function setText (el, text) {
  if (el.textContent !== text) el.textContent = text
}

function label (t, isLeast) {
  const parts = [`Token ${t.n}`]
  if (t.label) parts.push(`“${t.label}”`)
  if (t.status === 'active') parts.push(`leased to ${t.user ?? (t.holder ? `holder ${t.holder}` : 'a hidden user')}`, `until ${when(t.expiresAt)}`)
  else if (t.status === 'cooling') parts.push(`cooling until ${when(t.coolingUntil)}`)
  else if (t.status === 'disabled') parts.push(`disabled${t.disabledReason ? `: ${t.disabledReason}` : ''}`)
  else parts.push('available')
  parts.push(`used ${plural(t.usage, 'time', 'times')} this window`)
  if (isLeast) parts.push('least used')
  return parts.join(', ')
}
