import assert from 'node:assert/strict'
import { test } from 'node:test'
import { browserSkip, sharedBrowser } from '../helpers/browser.js'
import { build } from '../helpers/app.js'

// Page functions run in the browser; the project compiles without the DOM library.
declare const document: { querySelectorAll: (s: string) => { length: number } }

const skip = browserSkip

test('/docs renders Swagger UI in a real browser, under the service\'s CSP, with every operation and its examples', { skip }, async (t) => {
  const { app } = await build(t, 'pglite')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const base = `http://127.0.0.1:${port}`
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> }
  const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0)

  const context = await (await sharedBrowser()).newContext()
  // t.after runs in reverse order: the page closes before the app.
  t.after(async () => { await context.close() })
  const page = await context.newPage()
  const problems: string[] = []
  const requests: string[] = []
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`) })
  page.on('request', (req) => requests.push(req.url()))

  await page.goto(`${base}/docs`)
  await page.waitForFunction((n) => document.querySelectorAll('.opblock').length === n, operations, { timeout: 20_000 })
  await page.locator('#operations-leases-post_api_tokens_allocate .opblock-summary').click()
  const allocate = page.locator('#operations-leases-post_api_tokens_allocate')
  await allocate.getByText('pool_exhausted').first().waitFor({ timeout: 10_000 })
  assert.match(await allocate.innerText(), /evicted_user_id/)

  assert.deepEqual(problems, [], 'the page logged errors (a CSP violation shows here)')
  assert.deepEqual(requests.filter((u) => !u.startsWith(base)), [], 'everything comes from the service itself')
})
