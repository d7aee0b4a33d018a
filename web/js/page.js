// The page's elements, and the feedback line that every action reports to.

export const $ = (id) => document.getElementById(id)

export function say (text, kind = 'ok') {
  const p = $('feedback')
  p.textContent = text
  p.dataset.kind = kind
}
