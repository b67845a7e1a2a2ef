/**
 * `npm run token -- --sub alice --session s1 [--scope "gateway:publish"] [--channels "a:*"] [--publish "room:*"] [--ttl 1h]`
 * Prints a token signed with JWT_SECRET, or with the development secret the gateway
 * uses when no JWT configuration is set (SPEC §8).
 */
import { parseArgs } from 'node:util'
import { readOrCreateDevSecret } from './dev-secret.js'
import { mintDevToken } from './dev-token.js'

const { values } = parseArgs({
  options: {
    sub: { type: 'string' },
    session: { type: 'string' },
    scope: { type: 'string' },
    channels: { type: 'string' },
    publish: { type: 'string' },
    ttl: { type: 'string', default: '1h' }
  }
})

if (values.sub === undefined) {
  process.stderr.write('usage: npm run token -- --sub <user> [--session <id>] [--scope "<scopes>"] [--channels "a:*,b"] [--publish "room:*"] [--ttl 1h]\n')
  process.exit(1)
}

const secret = process.env.JWT_SECRET ?? readOrCreateDevSecret(process.env.DEV_SECRET_FILE ?? '.dev-secret')
const token = await mintDevToken({
  secret,
  sub: values.sub,
  sessionId: values.session,
  sessionClaim: process.env.JWT_SESSION_CLAIM,
  scope: values.scope,
  channels: values.channels?.split(',').map((channel) => channel.trim()).filter(Boolean),
  publish: values.publish?.split(',').map((channel) => channel.trim()).filter(Boolean),
  expiresIn: values.ttl,
  issuer: process.env.JWT_ISSUER,
  audience: process.env.JWT_AUDIENCE
})
process.stdout.write(`${token}\n`)
