import { appendFileSync, existsSync, mkdirSync } from 'node:fs'
import { after } from 'node:test'
import { chromium, type Browser } from 'playwright-core'

/** Debian's chromium, never a downloaded browser. CI installs it: apt-get install -y chromium */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Why the browser tests skip here, or false when they run: SKIP_BROWSER=1, or no Chromium
 * on this machine (`npm test` still passes; `.ci/run` installs it and fails if they skipped).
 */
export const browserSkip: string | false = process.env.SKIP_BROWSER === '1'
  ? 'browser tests SKIPPED: SKIP_BROWSER=1'
  : existsSync(CHROMIUM)
    ? false
    : `browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`

const MARKER = new URL('../artifacts/browser-ran', import.meta.url)

/** Records that a browser really started, for .ci/run to check. */
function browserRan (): void {
  mkdirSync(new URL('.', MARKER), { recursive: true })
  appendFileSync(MARKER, '.')
}

let browser: Promise<Browser> | undefined
// Imported by a test file: its browser closes when the file's tests end.
after(async () => { await (await browser)?.close() })

/**
 * One headless Chromium for the test file (starting one takes seconds): each test opens a
 * context of its own (`browser.newContext()`), which shares no cookies, storage or cache.
 */
export async function sharedBrowser (): Promise<Browser> {
  browser ??= chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  }).then((b) => { browserRan(); return b })
  return await browser
}
