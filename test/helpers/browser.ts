import { appendFileSync, existsSync, mkdirSync } from 'node:fs'

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
export function browserRan (): void {
  mkdirSync(new URL('.', MARKER), { recursive: true })
  appendFileSync(MARKER, '.')
}
