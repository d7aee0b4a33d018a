import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'client/dist/**', 'data/**', 'node_modules/**', 'coverage/**'] }),
]
