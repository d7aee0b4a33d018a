// The grid of tokens: one <button> per token, built once per layout, then only the
// cells whose look changed are touched. Above COMPACT_OVER tokens the cells shrink to
// coloured squares (10,000 fit a scrolling page) and drop their text, so the one-second
// tick has nothing to redraw but the few cells that change state.
import { clock, plural, shortId, when } from './format.js'

const COMPACT_OVER = 400
const ENDING_SECONDS = 10

export class Grid {
  /** @param {HTMLElement} root  @param {(token: object) => void} onOpen */
  constructor (root, onOpen) {
    this.root = root
    this.onOpen = onOpen
    /** @type {HTMLButtonElement[]} */
    this.cells = []
    this.rendered = []
    this.focusIndex = 0
    this.selected = -1
    root.addEventListener('click', (e) => {
      const cell = e.target.closest('.cell')
      if (cell) this.open(Number(cell.dataset.index))
    })
    root.addEventListener('keydown', (e) => this.onKey(e))
  }

  /** Builds one cell per token (a DocumentFragment, one reflow). */
  build (tokens) {
    this.compact = tokens.length > COMPACT_OVER
    this.root.classList.toggle('compact', this.compact)
    const help = document.getElementById('grid-help')
    if (help) {
      help.textContent = this.compact
        ? 'A large pool: each square is a token (hover or focus it for a summary). Arrow keys move; Enter opens one.'
        : 'Arrow keys move between tokens; Enter opens one. Each cell shows its number, uses in this window, holder and time left.'
    }
    const frag = document.createDocumentFragment()
    this.cells = tokens.map((t, i) => {
      const b = document.createElement('button')
      b.type = 'button'
      b.className = 'cell'
      b.dataset.index = String(i)
      b.dataset.id = t.id
      b.tabIndex = i === 0 ? 0 : -1
      if (!this.compact) {
        b.innerHTML = '<span class="n"></span><span class="count"></span><span class="holder"></span><span class="left"></span>'
        b.children[0].textContent = String(t.n)
      }
      frag.append(b)
      return b
    })
    this.rendered = tokens.map(() => ({}))
    this.focusIndex = 0
    this.root.replaceChildren(frag)
  }

  /**
   * Brings every cell up to date with its token; touches the DOM only where something changed.
   * `now` is the server's clock in ms; `least` the lowest usage count of the pool.
   */
  update (tokens, now, least) {
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]
      const cell = this.cells[i]
      const r = this.rendered[i]
      const left = t.status === 'active' ? (t.expiresAt - now) / 1000 : 0
      const state = t.status === 'available' ? 'available' : left <= ENDING_SECONDS ? 'ending' : 'active'
      const isLeast = t.usage === least
      if (r.state !== state || r.isLeast !== isLeast || r.usage !== t.usage || r.user !== t.user || r.selected !== (i === this.selected)) {
        cell.className = `cell ${state}${isLeast ? ' least' : ''}${i === this.selected ? ' selected' : ''}`
        cell.dataset.status = t.status
        cell.setAttribute('aria-label', label(t, isLeast))
        if (this.compact) cell.title = label(t, isLeast)
        else {
          cell.children[1].textContent = `${t.usage}×`
          cell.children[2].textContent = shortId(t.user)
        }
        if (i === this.selected) cell.setAttribute('aria-current', 'true')
        else cell.removeAttribute('aria-current')
        r.state = state
        r.isLeast = isLeast
        r.usage = t.usage
        r.user = t.user
        r.selected = i === this.selected
      }
      if (!this.compact) {
        const text = t.status === 'active' ? clock(left) : ''
        if (r.left !== text) {
          cell.children[3].textContent = text
          r.left = text
        }
      }
    }
  }

  select (index) {
    this.selected = index
  }

  open (index) {
    this.moveFocus(index, false)
    this.onOpen(index)
  }

  moveFocus (index, focus = true) {
    const n = this.cells.length
    if (n === 0) return
    const i = Math.max(0, Math.min(n - 1, index))
    this.cells[this.focusIndex]?.setAttribute('tabindex', '-1')
    this.cells[i].setAttribute('tabindex', '0')
    this.focusIndex = i
    if (focus) this.cells[i].focus()
  }

  focusSelected () {
    this.moveFocus(this.selected >= 0 ? this.selected : this.focusIndex)
  }

  /** Roving focus: one tab stop for the whole grid, arrows to move, as in a data grid. */
  onKey (e) {
    const cols = Math.max(1, window.getComputedStyle(this.root).gridTemplateColumns.split(' ').length)
    const at = this.focusIndex
    const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, ArrowDown: at + cols, ArrowUp: at - cols, Home: 0, End: this.cells.length - 1, PageDown: at + cols * 5, PageUp: at - cols * 5 }
    if (!(e.key in moves)) return
    e.preventDefault()
    this.moveFocus(moves[e.key])
  }
}

function label (t, isLeast) {
  const parts = [`Token ${t.n}`]
  if (t.status === 'active') parts.push(`leased to ${t.user}`, `until ${when(t.expiresAt)}`)
  else parts.push('available')
  parts.push(`used ${plural(t.usage, 'time', 'times')} this window`)
  if (isLeast) parts.push('least used')
  return parts.join(', ')
}
