// Run as a child process by openPglite: makes a new PGlite data directory (initdb) and exits,
// so the ~150 MB of WebAssembly heap that initdb grows leaves with this process.
import { PGlite } from '@electric-sql/pglite'

const dataDir = process.argv[2]
if (dataDir === undefined) throw new Error('usage: pglite-initdb <data directory>')
const pg = await PGlite.create(dataDir)
await pg.close()
