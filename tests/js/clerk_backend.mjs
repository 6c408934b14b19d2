// Conformance scenarios: Clerk's official Node SDK, @clerk/backend, against the Clerk stand-in.
//
// Usage: node clerk_backend.mjs <scenario>   (the config, JSON, in $SCENARIO_CONFIG)
//
// Config: {api_url, secret_key, ...per-scenario fields (see SCENARIOS below)}. `api_url` is
// the stand-in's base URL (the SDK appends /v1). Output: one JSON line on stdout,
//   {"result": {...}, "ok": true|false, "error"?: "..."}
// and exit 0 when the scenario ran to its end, 1 otherwise. The driver
// (tests/devstack/test_clerk_js.py) asserts on the result's observations.

import { createClerkClient, verifyToken } from '@clerk/backend'

const config = JSON.parse(process.env.SCENARIO_CONFIG ?? '{}')
const clerk = createClerkClient({ secretKey: config.secret_key, apiUrl: config.api_url })

/** The class the SDK deserialized an answer into, and the fields a test checks. */
function seen(value, fields) {
  const picked = Object.fromEntries(fields.map(name => [name, value[name]]))
  // The bundle renames some classes with a leading underscore (_User).
  return { kind: value.constructor.name.replace(/^_/, ''), ...picked }
}

/** What a refusal looks like to a caller: ClerkAPIResponseError's status, codes, trace id. */
function refusal(err) {
  return {
    kind: err.constructor.name.replace(/^_/, ""),
    status: err.status,
    codes: (err.errors ?? []).map(e => e.code),
    longMessages: (err.errors ?? []).map(e => e.longMessage),
    clerkTraceId: err.clerkTraceId,
    retryAfter: err.retryAfter ?? null,
  }
}

async function objects() {
  const user = await clerk.users.createUser({ emailAddress: ['ada@acme.test'], firstName: 'Ada' })
  const bare = await clerk.users.createUser({ username: 'svc' })
  const org = await clerk.organizations.createOrganization({ name: 'Acme', createdBy: user.id })
  const membership = await clerk.organizations.createOrganizationMembership({
    organizationId: org.id,
    userId: bare.id,
    role: 'org:worker',
  })
  // CreateSessionParams names only userId; the body is snake_cased as given.
  const session = await clerk.sessions.createSession({ userId: bare.id, activeOrganizationId: org.id })
  const fetched = await clerk.sessions.getSession(session.id)
  const listed = await clerk.sessions.getSessionList({ userId: bare.id, status: 'active' })
  const token = await clerk.sessions.getToken(session.id, undefined, 120)
  const ticket = await clerk.signInTokens.createSignInToken({
    userId: bare.id,
    orgId: org.id,
    expiresInSeconds: 60,
  })
  const revokedTicket = await clerk.signInTokens.revokeSignInToken(ticket.id)
  const revoked = await clerk.sessions.revokeSession(session.id)
  const jwks = await clerk.jwks.getJwks()
  const removed = await clerk.organizations.deleteOrganizationMembership({
    organizationId: org.id,
    userId: bare.id,
  })
  const got = await clerk.users.getUser(user.id)
  const deleted = await clerk.users.deleteUser(user.id)
  return {
    user: { ...seen(user, ['id', 'primaryEmailAddressId']), email: seen(user.emailAddresses[0], ['id', 'emailAddress']) },
    verification: user.emailAddresses[0].verification?.status ?? null,
    bare: seen(bare, ['id', 'username', 'emailAddresses', 'phoneNumbers']),
    org: seen(org, ['id', 'slug', 'membersCount']),
    membership: { ...seen(membership, ['role']), publicUserData: seen(membership.publicUserData, ['userId', 'imageUrl']) },
    session: seen(session, ['id', 'status', 'lastActiveOrganizationId', 'expireAt', 'abandonAt']),
    fetched: seen(fetched, ['id', 'status']),
    listed: { totalCount: listed.totalCount, ids: listed.data.map(s => s.id), kinds: listed.data.map(s => s.constructor.name.replace(/^_/, '')) },
    token: seen(token, ['jwt']),
    ticket: seen(ticket, ['id', 'userId', 'status', 'token', 'url']),
    revokedTicket: seen(revokedTicket, ['id', 'status']),
    revoked: seen(revoked, ['id', 'status']),
    jwks: { kids: jwks.keys.map(k => k.kid) },
    removed: seen(removed, ['role']),
    got: seen(got, ['id']),
    deleted: seen(deleted, ['id', 'deleted']),
  }
}

// Config: {call: "getToken" | "getSession" | "createSession" | "createSignInToken", args: [...]}
async function refused() {
  const calls = {
    getToken: (sessionId) => clerk.sessions.getToken(sessionId),
    getSession: (sessionId) => clerk.sessions.getSession(sessionId),
    createSession: (userId) => clerk.sessions.createSession({ userId }),
    createSignInToken: (userId, orgId) => clerk.signInTokens.createSignInToken({ userId, orgId, expiresInSeconds: 60 }),
  }
  try {
    const answer = await calls[config.call](...config.args)
    return { refused: false, answer }
  } catch (err) {
    return { refused: true, ...refusal(err) }
  }
}

// Config: {token, issuer}: verifyToken with the secret key (the JWKS from GET /v1/jwks).
async function verify() {
  try {
    const payload = await verifyToken(config.token, {
      secretKey: config.secret_key,
      apiUrl: config.api_url,
      issuer: config.issuer,
      skipJwksCache: true,
    })
    return { verified: true, payload }
  } catch (err) {
    return { verified: false, reason: err.reason ?? null, message: String(err.message ?? err) }
  }
}

const SCENARIOS = { objects, refused, verify }

async function main() {
  const name = process.argv[2]
  const scenario = SCENARIOS[name]
  if (scenario === undefined) throw new Error(`unknown scenario ${name}`)
  return scenario()
}

main().then(
  result => {
    process.stdout.write(JSON.stringify({ result, ok: true }) + '\n')
    process.exit(0)
  },
  err => {
    process.stdout.write(JSON.stringify({ result: null, ok: false, error: String(err?.stack ?? err) }) + '\n')
    process.exit(1)
  },
)
