// A process that takes a PGlite directory's lock, says whether it got it, and holds it until
// its standard input ends (the test ends it once every process has said).
import { DataDirInUse, lockDataDir } from '../../src/store/data-dir-lock.js'

const dir = process.argv[2]!
// Every process of a test starts its attempt at the same moment (argv[3], epoch ms).
const at = Number(process.argv[3] ?? 0)
while (Date.now() < at) { /* spin: a timer would spread the starts over milliseconds */ }
try {
  const release = await lockDataDir(dir)
  process.stdout.write('locked\n')
  await new Promise((resolve) => { process.stdin.on('end', resolve).resume() })
  release()
} catch (err) {
  process.stdout.write(err instanceof DataDirInUse ? 'in use\n' : `failed: ${String(err)}\n`)
}
