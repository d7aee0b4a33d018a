// The events feed on the page: the newest events of the pool shown, routine ones only
// when asked for (feed.js words them), each naming its token as a link to its details.
import { describeEvent, FEED_MAX, isRoutine } from './feed.js'
import { when } from './format.js'
import { $ } from './page.js'
import { model, tokenName } from './state.js'

/** newest first: { at, type, kind, text, tokenId, routine } */
const feed = []

export function addFeed (type, data) {
  const d = describeEvent(type, data, tokenName, when)
  feed.unshift({ at: Date.now(), type, ...d, routine: isRoutine(type, data) })
  if (feed.length > FEED_MAX) feed.length = FEED_MAX
  scheduleFeed()
}

let feedTimer = 0
function scheduleFeed () {
  if (feedTimer) return
  feedTimer = setTimeout(() => { feedTimer = 0; renderFeed() }, 100)
}

export function renderFeed () {
  const all = $('feed-all').checked
  const shown = feed.filter((f) => all || !f.routine).slice(0, 50)
  const frag = document.createDocumentFragment()
  for (const f of shown) {
    const li = document.createElement('li')
    li.dataset.kind = f.kind
    const time = document.createElement('time')
    time.dateTime = new Date(f.at).toISOString()
    time.textContent = when(f.at)
    const kind = document.createElement('span')
    kind.className = 'kind'
    kind.textContent = f.kind
    let text
    if (f.tokenId && model.byId.has(f.tokenId)) {
      text = document.createElement('button')
      text.type = 'button'
      text.className = 'link'
      text.dataset.open = f.tokenId
    } else text = document.createElement('span')
    text.textContent = f.text
    li.append(time, kind, text)
    frag.append(li)
  }
  $('feed').replaceChildren(frag)
  $('feed-empty').hidden = shown.length > 0
}

export function clearFeed () {
  feed.length = 0
  renderFeed()
}
