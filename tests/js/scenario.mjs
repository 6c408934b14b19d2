// Conformance scenarios: the official @supabase/realtime-js client against a Realtime server.
//
// Usage: node scenario.mjs <scenario> '<json config>'   (or the config in $SCENARIO_CONFIG)
//
// Config: {url, apikey, vsn, timeout_ms?, ...per-scenario fields (see SCENARIOS below)}.
// `url` is the Realtime base, e.g. ws://127.0.0.1:4000/realtime/v1 (the client appends
// /websocket). Output is JSON lines on stdout:
//   {"step": "<name>", ...}   the client reached a point where the driver must act
//                             (e.g. insert a row); the driver reads it and acts
//   {"result": {...}, "ok": true|false, "error"?: "..."}   exactly once, last
// The process exits 0 when the scenario ran to its end, 1 on a timeout or an error. The
// driver (tests/devstack/test_realtime_js.py) asserts on the result's observations.

import { RealtimeClient } from '@supabase/realtime-js'
import WebSocket from 'ws'

const DEFAULT_TIMEOUT_MS = 15000

const [, , scenarioName, rawConfig] = process.argv
const config = JSON.parse(rawConfig ?? process.env.SCENARIO_CONFIG ?? '{}')
const timeoutMs = config.timeout_ms ?? DEFAULT_TIMEOUT_MS
const clients = []

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n')
}

function step(name, extra = {}) {
  emit({ step: name, ...extra })
}

/** Observations in arrival order, awaited with a deadline (never polled). */
class Feed {
  constructor() {
    this.items = []
    this.listeners = new Set()
  }

  push(item) {
    this.items.push(item)
    for (const listener of [...this.listeners]) listener()
  }

  until(predicate, label, ms = timeoutMs) {
    return new Promise((resolve, reject) => {
      let timer
      const check = () => {
        const hit = this.items.find(predicate)
        if (hit === undefined) return false
        clearTimeout(timer)
        this.listeners.delete(check)
        resolve(hit)
        return true
      }
      if (check()) return
      timer = setTimeout(() => {
        this.listeners.delete(check)
        reject(new Error(`timed out after ${ms} ms waiting for ${label}`))
      }, ms)
      this.listeners.add(check)
    })
  }
}

/** A client exactly as an application builds it on Node 20: `ws` passed as transport. */
function newClient() {
  const client = new RealtimeClient(config.url, {
    params: { apikey: config.apikey },
    transport: WebSocket,
    vsn: config.vsn,
    timeout: 10000, // join timeout >= 10 s, as the server delays join errors
  })
  clients.push(client)
  return client
}

/**
 * A channel whose every observable is recorded. `token` goes into this channel's join
 * payload only (client.setAuth would push it to every joined channel of the client).
 */
function openChannel(client, subTopic, { token, config: channelConfig = {}, setup } = {}) {
  const channel = client.channel(subTopic, { config: channelConfig })
  const feeds = {
    status: new Feed(),
    broadcast: new Feed(),
    system: new Feed(),
    changes: new Feed(),
    presence: new Feed(),
  }
  channel.on('broadcast', { event: '*' }, (message) => feeds.broadcast.push(message))
  channel.on('system', {}, (message) => feeds.system.push(message))
  if (setup) setup(channel, feeds)
  if (token) channel.updateJoinPayload({ access_token: token })
  channel.subscribe((status, err) => feeds.status.push({ status, error: err?.message ?? null }))
  return { channel, feeds }
}

function subscribed(feeds, label) {
  return feeds.status.until((s) => s.status !== 'CLOSED', `${label} join reply`).then((s) => {
    if (s.status !== 'SUBSCRIBED') throw new Error(`${label}: ${s.status} ${s.error ?? ''}`)
    return s
  })
}

function expOf(token) {
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
  return claims.exp * 1000
}

function at(epochMs) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, epochMs - Date.now())))
}

const SCENARIOS = {
  // {token, topic}: a member joins their org's private channel.
  async private_join_allowed() {
    const { feeds } = openChannel(newClient(), config.topic, {
      token: config.token,
      config: { private: true },
    })
    const reply = await feeds.status.until(() => true, 'join reply')
    return { status: reply.status, error: reply.error }
  },

  // {token, topic}: another org's member is refused; the text is the server's reason.
  async private_join_denied() {
    const { feeds } = openChannel(newClient(), config.topic, {
      token: config.token,
      config: { private: true },
    })
    const reply = await feeds.status.until(() => true, 'join reply')
    return { status: reply.status, error: reply.error }
  },

  // {token, topic}: a row in the outbox reaches the private channel (realtime.send).
  async db_broadcast() {
    const { feeds } = openChannel(newClient(), config.topic, {
      token: config.token,
      config: { private: true },
    })
    await subscribed(feeds, 'channel')
    step('subscribed')
    const message = await feeds.broadcast.until(() => true, 'database broadcast')
    return { message }
  },

  // {short_token, long_token, expiring_topic, topic}: the short-token channel is closed at
  // exp with the server's system text; the other channel on the same socket lives on.
  async token_expiry() {
    const client = newClient()
    const doomed = openChannel(client, config.expiring_topic, {
      token: config.short_token,
      config: { private: true },
    })
    const alive = openChannel(client, config.topic, {
      token: config.long_token,
      config: { private: true },
    })
    await subscribed(doomed.feeds, 'expiring channel')
    await subscribed(alive.feeds, 'long-lived channel')
    await doomed.feeds.status.until((s) => s.status === 'CLOSED', 'expiring channel CLOSED')
    step('closed')
    const message = await alive.feeds.broadcast.until(() => true, 'broadcast after the close')
    return {
      expiring_system: doomed.feeds.system.items,
      expiring_statuses: doomed.feeds.status.items.map((s) => s.status),
      alive_statuses: alive.feeds.status.items.map((s) => s.status),
      alive_socket: client.isConnected(),
      alive_message: message,
    }
  },

  // {tokens: [t0, t1, ...], topic}: setAuth with the next token before each exp keeps the
  // channel joined past every old exp; after each, the driver sends a broadcast.
  async set_auth_refresh() {
    const client = newClient()
    const [first, ...next] = config.tokens
    const { channel, feeds } = openChannel(client, config.topic, {
      token: first,
      config: { private: true },
    })
    await subscribed(feeds, 'channel')
    let current = first
    for (const [k, token] of next.entries()) {
      await at(expOf(current) - 1500)
      await client.setAuth(token)
      await at(expOf(current) + 300)
      if (channel.state !== 'joined') throw new Error(`channel ${channel.state} after exp ${k}`)
      step('past_expiry', { k })
      await feeds.broadcast.until((_, i) => i === k, `broadcast ${k} after refresh`)
      current = token
    }
    return {
      expiries_survived: next.length,
      state: channel.state,
      statuses: feeds.status.items.map((s) => s.status),
      system: feeds.system.items,
      received: feeds.broadcast.items,
    }
  },

  // {token, topic}: a broadcast with ack resolves 'ok'; with self it comes back too.
  async broadcast_ack() {
    const { channel, feeds } = openChannel(newClient(), config.topic, {
      token: config.token,
      config: { private: true, broadcast: { ack: true, self: true } },
    })
    await subscribed(feeds, 'channel')
    const payload = { n: 1, text: 'ack me' }
    const sent = await channel.send({ type: 'broadcast', event: 'ping', payload })
    const echo = await feeds.broadcast.until((m) => m.event === 'ping', 'self broadcast')
    return { send: sent, echo }
  },

  // {token, topic}: a public and a private channel on one sub-topic (two sockets: one
  // socket cannot join a topic twice); the driver sends a private then a public message.
  async public_private_isolation() {
    const pub = openChannel(newClient(), config.topic, { config: { private: false } })
    const priv = openChannel(newClient(), config.topic, {
      token: config.token,
      config: { private: true },
    })
    await subscribed(pub.feeds, 'public channel')
    await subscribed(priv.feeds, 'private channel')
    step('subscribed')
    await priv.feeds.broadcast.until((m) => m.event === config.private_event, 'private message')
    await pub.feeds.broadcast.until((m) => m.event === config.public_event, 'public message')
    return {
      public_events: pub.feeds.broadcast.items.map((m) => m.event),
      private_events: priv.feeds.broadcast.items.map((m) => m.event),
    }
  },

  // {tokens: [t1, t2], topic}: two members track; the first sees the second join, then leave.
  async presence() {
    const watchPresence = (channel, feeds) => {
      channel.on('presence', { event: 'sync' }, () => feeds.presence.push({ event: 'sync' }))
      channel.on('presence', { event: 'join' }, ({ key }) => feeds.presence.push({ event: 'join', key }))
      channel.on('presence', { event: 'leave' }, ({ key }) => feeds.presence.push({ event: 'leave', key }))
    }
    const open = (token, key) =>
      openChannel(newClient(), config.topic, {
        token,
        config: { private: true, presence: { key, enabled: true } },
        setup: watchPresence,
      })
    const one = open(config.tokens[0], 'one')
    await subscribed(one.feeds, 'first member')
    await one.channel.track({ name: 'one' })
    const two = open(config.tokens[1], 'two')
    await subscribed(two.feeds, 'second member')
    const tracked = await two.channel.track({ name: 'two' })
    await one.feeds.presence.until((p) => p.event === 'join' && p.key === 'two', 'join of two')
    const stateAfterJoin = one.channel.presenceState()
    await two.channel.untrack()
    await one.feeds.presence.until((p) => p.event === 'leave' && p.key === 'two', 'leave of two')
    return {
      track: tracked,
      keys_after_join: Object.keys(stateAfterJoin).sort(),
      metas_of_two: stateAfterJoin.two?.map(({ name }) => ({ name })) ?? [],
      keys_after_leave: Object.keys(one.channel.presenceState()).sort(),
      events: one.feeds.presence.items.filter((p) => p.event !== 'sync'),
    }
  },

  // {token, topic, table, filter}: the first change delivered under filter and RLS.
  async postgres_changes() {
    const binding = { event: 'INSERT', schema: 'public', table: config.table, filter: config.filter }
    const { feeds } = openChannel(newClient(), config.topic, {
      token: config.token,
      config: { private: true },
      setup: (channel, f) => channel.on('postgres_changes', binding, (change) => f.changes.push(change)),
    })
    await subscribed(feeds, 'channel')
    const ready = await feeds.system.until(
      (m) => m.extension === 'postgres_changes',
      'postgres_changes system message',
    )
    step('subscribed')
    const change = await feeds.changes.until(() => true, 'a postgres change')
    return { system: ready, change }
  },
}

async function main() {
  const scenario = SCENARIOS[scenarioName]
  if (!scenario) throw new Error(`unknown scenario ${scenarioName}; known: ${Object.keys(SCENARIOS)}`)
  return await scenario()
}

function finish(line, code) {
  for (const client of clients) client.disconnect()
  process.stdout.write(JSON.stringify(line) + '\n', () => process.exit(code))
}

main().then(
  (result) => finish({ ok: true, scenario: scenarioName, vsn: config.vsn, result }, 0),
  (error) => finish({ ok: false, scenario: scenarioName, vsn: config.vsn, error: String(error?.message ?? error) }, 1),
)
