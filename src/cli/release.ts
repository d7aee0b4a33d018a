import { fields, TOKEN_POOL_HELP, POOL_OPTION, remote, required, scope, who } from './remote.js'

const summary = 'give a token back before its lease ends'

/** token-pool release TOKEN --user U [--pool P] */
export const release = {
  summary,
  run: remote('release', {
    usage: 'release TOKEN_ID --user USER_ID [--pool NAME]',
    summary,
    details: 'Fails with not_holder (exit 1) when that user does not hold that token now.\n\n' +
      `Options of release:\n  --user USER_ID       the holder (required)\n${TOKEN_POOL_HELP}`,
    options: { user: { type: 'string' }, ...POOL_OPTION },
    positionals: ['TOKEN_ID'],
    run: async ({ client, values, positionals }) => {
      const user = required(values, 'user')
      const ended = await scope(client, values).release(positionals[0] ?? '', user)
      return {
        json: ended,
        text: fields([
          ['pool', ended.pool],
          ['token', ended.token_id],
          ['user', who(ended.user_id, ended.holder)],
          ['lease', String(ended.lease_id)],
          ['started', ended.started_at],
          ['released', ended.released_at],
          ['reason', ended.release_reason],
        ]),
      }
    },
  }),
}
