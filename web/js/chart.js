// The usage-count distribution as an inline SVG bar chart: how many tokens have each
// count. No library: at most MAX_BARS bars, binned when the counts spread wider.

const MAX_BARS = 30
const NS = 'http://www.w3.org/2000/svg'

/** @param {HTMLElement} root  @param {Array<[number, number]>} dist  [usage count, tokens] ascending */
export function drawChart (root, dist, total) {
  if (dist.length === 0) {
    root.textContent = 'No tokens.'
    return
  }
  const lo = dist[0][0]
  const hi = dist[dist.length - 1][0]
  const width = Math.max(1, Math.ceil((hi - lo + 1) / MAX_BARS))
  const bins = []
  for (let start = lo; start <= hi; start += width) bins.push({ start, end: Math.min(hi, start + width - 1), tokens: 0 })
  for (const [count, tokens] of dist) bins[Math.floor((count - lo) / width)].tokens += tokens
  const peak = Math.max(...bins.map((b) => b.tokens))

  // Drawn at the box's own width, so the labels keep their size on a phone.
  const W = Math.max(280, Math.min(900, root.clientWidth || 600))
  const H = 180
  const pad = { l: 36, r: 8, t: 18, b: 34 }
  const bw = (W - pad.l - pad.r) / bins.length
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-desc' })
  const desc = el('title', { id: 'chart-desc' })
  desc.textContent = `Tokens by usage count: ${bins.map((b) => `${range(b)}: ${b.tokens}`).join('; ')}. ${total} tokens in all.`
  svg.append(desc)
  svg.append(el('line', { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, class: 'axis' }))
  const yTop = el('text', { x: pad.l - 6, y: pad.t + 4, class: 'tick', 'text-anchor': 'end' })
  yTop.textContent = String(peak)
  svg.append(yTop)
  const labelEvery = Math.ceil(bins.length / 12)
  bins.forEach((b, i) => {
    const h = peak === 0 ? 0 : ((H - pad.t - pad.b) * b.tokens) / peak
    const x = pad.l + i * bw
    const rect = el('rect', { x: x + bw * 0.1, y: H - pad.b - h, width: bw * 0.8, height: Math.max(h, b.tokens > 0 ? 1 : 0), class: i === 0 ? 'bar least' : 'bar' })
    const tip = el('title', {})
    tip.textContent = `${b.tokens} token(s) used ${range(b)} time(s)`
    rect.append(tip)
    svg.append(rect)
    if (b.tokens > 0 && bins.length <= 20) {
      const v = el('text', { x: x + bw / 2, y: H - pad.b - h - 4, class: 'tick', 'text-anchor': 'middle' })
      v.textContent = String(b.tokens)
      svg.append(v)
    }
    if (i % labelEvery === 0) {
      const t = el('text', { x: x + bw / 2, y: H - pad.b + 14, class: 'tick', 'text-anchor': 'middle' })
      t.textContent = range(b)
      svg.append(t)
    }
  })
  const xTitle = el('text', { x: (W + pad.l) / 2, y: H - 4, class: 'axis-title', 'text-anchor': 'middle' })
  xTitle.textContent = 'uses in this window → tokens'
  svg.append(xTitle)
  root.replaceChildren(svg)
}

const range = (b) => (b.start === b.end ? String(b.start) : `${b.start}–${b.end}`)

function el (name, attrs) {
  const e = document.createElementNS(NS, name)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v))
  return e
}
