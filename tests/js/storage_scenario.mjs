// Conformance scenarios: the official @supabase/storage-js client against a Storage server.
//
// Usage: node storage_scenario.mjs <scenario>   (config as JSON in $SCENARIO_CONFIG)
//
// Config: {url, apikey, token, bucket, org, other_org, folder, ...}. `url` is the Storage
// base, e.g. http://127.0.0.1:54321/storage/v1. Output is JSON lines on stdout, as in
// scenario.mjs: {"step": "<name>", ...} when the driver must act (it answers on stdin with
// one line), then exactly one {"result": {...}, "ok": true|false, "error"?: "..."}. The
// driver is tests/devstack/test_storage_js.py.

import { StorageClient } from '@supabase/storage-js'
import { createInterface } from 'node:readline'

const [, , scenarioName] = process.argv
const config = JSON.parse(process.env.SCENARIO_CONFIG ?? '{}')
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n')
}

/** Ask the driver to act, and wait for its acknowledgement line. */
async function step(name, extra = {}) {
  emit({ step: name, ...extra })
  await stdin.next()
}

/** A client exactly as supabase-js builds it: the apikey plus the user's token. */
function files(token = config.token) {
  const client = new StorageClient(config.url, {
    apikey: config.apikey,
    Authorization: `Bearer ${token}`,
  })
  return client.from(config.bucket)
}

/** What a refused call surfaced: the HTTP status and Storage's body fields. */
function refusal({ data, error }) {
  if (!error) return { data: data ?? null }
  return { status: error.status, statusCode: error.statusCode, code: error.code, message: error.message }
}

async function fetched(url) {
  const response = await fetch(url) // a browser opening the link: no apikey, no token
  const text = await response.text()
  return { status: response.status, body: response.ok ? text : JSON.parse(text) }
}

const SCENARIOS = {
  /** Upload, list, download, sign, info, remove under <org>/<folder>/. */
  async own_org() {
    const bucket = files()
    const path = `${config.org}/${config.folder}/report.txt`
    const upload = await bucket.upload(path, Buffer.from('hello from js'), {
      contentType: 'text/plain',
    })
    const list = await bucket.list(`${config.org}/${config.folder}`)
    const download = await bucket.download(path)
    const signed = await bucket.createSignedUrl(path, 60)
    const opened = await fetched(signed.data.signedUrl)
    const exists = await bucket.exists(path)
    const remove = await bucket.remove([path])
    const after = await bucket.exists(path)
    return {
      upload: upload.error ?? upload.data,
      listed: (list.data ?? []).map((entry) => entry.name),
      downloaded: download.error ? null : await download.data.text(),
      opened,
      exists: exists.data,
      removed: (remove.data ?? []).map((row) => row.name),
      exists_after: after.data,
    }
  },

  /** The same calls where the token's org has no say: another org's folder, the root. */
  async refused() {
    const bucket = files()
    const other = `${config.other_org}/${config.folder}/theirs.txt`
    const root = `${config.folder}-root.txt`
    return {
      upload_other: refusal(await bucket.upload(other, Buffer.from('x'), { upsert: true })),
      upload_root: refusal(await bucket.upload(root, Buffer.from('x'))),
      download_other: refusal(await bucket.download(other)),
      sign_other: refusal(await bucket.createSignedUrl(other, 60)),
      list_other: refusal(await bucket.list(`${config.other_org}/${config.folder}`)),
      remove_other: refusal(await bucket.remove([other])),
    }
  },

  /** A signed URL opens its object only, and only until it expires (the driver moves time). */
  async signed_url() {
    const bucket = files()
    const path = `${config.org}/${config.folder}/signed.txt`
    await bucket.upload(path, Buffer.from('signed bytes'), { contentType: 'text/plain' })
    const signed = (await bucket.createSignedUrl(path, 30)).data.signedUrl
    const token = new URL(signed).searchParams.get('token')
    const swapped = `${config.url}/object/sign/${config.bucket}/${config.org}/${config.folder}/other.txt?token=${token}`
    const before = await fetched(signed)
    const elsewhere = await fetched(swapped)
    await step('signed', { seconds: 30 })
    const after = await fetched(signed)
    return { before, elsewhere, after }
  },
}

async function main() {
  const scenario = SCENARIOS[scenarioName]
  if (!scenario) throw new Error(`unknown scenario ${scenarioName}`)
  emit({ result: await scenario(), ok: true })
}

main()
  .then(() => process.exit(0))
  .catch((error) => {
    emit({ result: null, ok: false, error: String(error?.stack ?? error) })
    process.exit(1)
  })
