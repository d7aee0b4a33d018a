import { fields, remote, required } from './remote.js'

const summary = 'give a token back before its lease ends'

/** token-pool release TOKEN --user U */
export const release = {
  summary,
  run: remote('release', {
    usage: 'release TOKEN_ID --user USER_ID',
    summary,
    details: 'Fails with not_holder (exit 1) when that user does not hold that token now.',
    options: { user: { type: 'string' } },
    positionals: ['TOKEN_ID'],
    run: async ({ client, values, positionals }) => {
      const ended = await client.release(positionals[0] ?? '', required(values, 'user'))
      return {
        json: ended,
        text: fields([['token', ended.token_id], ['user', ended.user_id ?? '(hidden)'], ['started', ended.started_at], ['released', ended.released_at], ['reason', ended.release_reason]]),
      }
    },
  }),
}
