// Hostile input: the corpus in test/corpus (made by test/corpus/generate.mjs: malformed and hostile REGISTERs and
// INVITEs as raw bytes) is sent to the real Kamailio by a small raw sender standing in for a hostile client, on its
// own loopback address; the victim and the sleeper are phones on theirs, registered at the domain DOMAIN, and a
// hostile REGISTER for the victim names the victim's own Contact URI.
// Kamailio never crashes, every request gets a SIP answer, a device record changes only for a valid REGISTER (and
// then holds what was sent), and every push the mock APNs receives is valid JSON whose fields equal what the
// INVITE said: no injection.
import { afterAll, beforeAll, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { encodeNetstring } from "../../src/helper/netstring";
import { ROOT } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, WakeFixture, pushParams, startWakeFixture } from "../support/wake-fixture";
import { SipClient, contactUserOf, newBranch, register } from "./support/sip-client";
import { kamailioPids, pusherStartPid } from "./support/processes";

interface CorpusEntry {
  file: string;
  transport: "udp" | "tcp";
  method: "REGISTER" | "INVITE";
  aor: string;
  /** REGISTER: `unchanged` (invalid: nothing may change), `stores` (valid: its tokens are stored), `maybe` (either). */
  expect?: "unchanged" | "stores" | "maybe";
  tokens?: string[];
  conflicting?: boolean;
  /** Kamailio drops it before any route runs (why): no answer is possible, but nothing may change either. */
  unanswered?: string;
  /** A product bug this request shows (reported in its own it.fails below). */
  knownBug?: string;
  callId?: string;
  push?: boolean;
  /** The caller id the push must carry; name null: not UTF-8, only checked to be a string. */
  caller?: { number: string; name: string | null };
}

const CORPUS = join(ROOT, "test", "corpus");
const manifest: { domain: string; victimToken: string; appId: string; entries: CorpusEntry[] } = JSON.parse(readFileSync(join(CORPUS, "manifest.json"), "utf8"));
if (process.env.CORPUS_ONLY) manifest.entries = manifest.entries.filter((entry) => new RegExp(process.env.CORPUS_ONLY!).test(entry.file));
const SLEEPER_TOKEN = "5eeb5eeb5eeb5eeb5eeb5eeb5eeb5eeb";
// Keys an incoming-call APNs body may have (src/helper/apns-payload.ts).
const PUSH_KEYS = ["aps", "call-id", "caller-id-number", "caller-id-name", "proxy", "utc_unix_timestamp_ms", "registration-token", "account-ref"];

let fixture: WakeFixture;
/** The hostile sender: every corpus message comes from it. */
let client: SipClient;
/** The phones the corpus aims at, each on its own address. */
let victim: SipClient;
let sleeper: SipClient;

function devices(): Map<string, string> {
  const dump = fixture.pusher.rpc("htable.dump", "pusher_devices");
  const records = new Map<string, string>();
  for (const match of dump.matchAll(/name: (.*)\n\s*value: (.*)\n/g)) records.set(match[1], match[2]);
  return records;
}

function messageOf(entry: CorpusEntry): Buffer {
  let text = readFileSync(join(CORPUS, "messages", entry.file)).toString("latin1");
  text = text
    .replace(/@@VICTIM_ADDRESS@@/g, victim.address)
    .replace(/@@VICTIM_PORT@@/g, String(victim.port))
    .replace(/@@ADDRESS@@/g, client.address)
    .replace(/@@PORT@@/g, String(client.port))
    .replace(/@@BRANCH@@/g, newBranch());
  if (entry.transport === "tcp") text = text.replace("SIP/2.0/UDP", "SIP/2.0/TCP");
  return Buffer.from(text, "latin1");
}

beforeAll(async () => {
  fixture = await startWakeFixture({ calls: { strategy: "push-first" }, timers: { pushWaitMs: 1000 } });
  // The sleeper's PushKit token is one APNs issued: every push to it is accepted, none drops its record.
  fixture.apns.addDevice(SLEEPER_TOKEN, { bundle: APP_ID, kind: "voip" });
  [client, victim, sleeper] = await Promise.all([0, 1, 2].map(() => SipClient.open(fixture.pusher.sipPort)));
  expect(new Set([client.address, victim.address, sleeper.address]).size).toBe(3);
  // Contact sip:c-victim@<victim's address:port>: the URI the corpus's hostile REGISTERs for the victim name.
  expect((await victim.send(register(victim, "victim", DOMAIN, pushParams(manifest.victimToken))).final)?.status).toBe(200);
  expect((await sleeper.send(register(sleeper, "sleeper", DOMAIN, pushParams(SLEEPER_TOKEN))).final)?.status).toBe(200);
  expect(devices().get(`victim@${DOMAIN}`)).toContain(`"instance":"sip:${contactUserOf("victim")}@${victim.hostPort}"`);
}, 30000);

afterAll(async () => {
  for (const sender of [client, victim, sleeper]) sender?.close();
  await fixture?.stop();
});

it.skipIf(!!process.env.CORPUS_ONLY)("has at least 300 messages, addressed to AORs of the test domain", () => {
  expect(manifest.entries.length).toBeGreaterThanOrEqual(300);
  expect(manifest.domain).toBe(DOMAIN);
  expect(manifest.entries.filter((entry) => !entry.aor.endsWith(`@${DOMAIN}`)).map((entry) => entry.file)).toEqual([]);
});

it("answers every hostile REGISTER, and changes a record only for a valid one", async () => {
  const { pusher } = fixture;
  const kamailioBefore = kamailioPids(pusherStartPid(pusher));
  expect(devices().get(`victim@${DOMAIN}`)).toContain(manifest.victimToken);
  const unanswered: string[] = [];
  const wrongChanges: string[] = [];
  const notStored: string[] = [];
  const statuses = new Map<number, number>();
  let dropped = 0;
  let before = devices();
  for (const entry of manifest.entries.filter((candidate) => candidate.method === "REGISTER" && !candidate.knownBug)) {
    const answer = await client.send(messageOf(entry), { transport: entry.transport, timeoutMs: entry.unanswered ? 2000 : 8000 }).final;
    if (answer) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    else if (entry.unanswered) dropped++;
    else unanswered.push(entry.file);
    const after = devices();
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((aor) => before.get(aor) !== after.get(aor));
    const allowed = entry.expect === "stores" || entry.expect === "maybe" ? [entry.aor] : [];
    for (const aor of changed) {
      const record = after.get(aor) ?? "";
      const holdsSent = (entry.tokens ?? []).some((token) => record.includes(token));
      if (!allowed.includes(aor) || !holdsSent) wrongChanges.push(`${entry.file}: ${aor} ${before.get(aor) ?? "(none)"} → ${after.get(aor) ?? "(removed)"}`.slice(0, 400));
    }
    if (entry.expect === "stores") {
      const record = after.get(entry.aor) ?? "";
      const missing = (entry.tokens ?? []).filter((token) => !record.includes(token));
      if (answer?.status !== 200 || missing.length) notStored.push(`${entry.file}: ${answer?.status} missing ${missing.length} token(s)`);
    }
    before = after;
  }
  console.log(`[faults] hostile REGISTERs: ${manifest.entries.filter((e) => e.method === "REGISTER").length} sent, answers ${JSON.stringify(Object.fromEntries(statuses))}, ${dropped} dropped unparsed by Kamailio's core`);
  expect(unanswered).toEqual([]);
  expect(wrongChanges).toEqual([]);
  expect(notStored).toEqual([]);
  expect(kamailioPids(pusherStartPid(pusher))).toEqual(kamailioBefore);
  expect(pusher.rpc("core.uptime")).toMatch(/uptime/);
}, 120000);

it("answers every hostile INVITE, and every push is valid JSON carrying exactly what was sent", async () => {
  const { pusher, apns } = fixture;
  const kamailioBefore = kamailioPids(pusherStartPid(pusher));
  const invites = manifest.entries.filter((entry) => entry.method === "INVITE" && !entry.knownBug);
  const firstPush = apns.requests.length;
  const sent = [];
  // Forty at a time: each is held for t2 (1 s).
  for (let i = 0; i < invites.length; i += 40) {
    const batch = invites.slice(i, i + 40).map((entry) => ({ entry, request: client.send(messageOf(entry), { transport: entry.transport, timeoutMs: entry.unanswered ? 3000 : 8000 }) }));
    await Promise.all(batch.map((item) => item.request.final));
    sent.push(...batch);
  }
  await new Promise((done) => setTimeout(done, 500));
  const unanswered = sent.filter((item) => item.request.finals().length !== (item.entry.unanswered ? 0 : 1)).map((item) => `${item.entry.file}: ${item.request.finals().length} final answers`);
  expect(unanswered).toEqual([]);

  const pushes = apns.requests.slice(firstPush);
  // Every body the mock received is JSON with only the push's own keys.
  expect(pushes.filter((push) => push.body === undefined).map((push) => push.rawBody.slice(0, 200))).toEqual([]);
  expect(pushes.flatMap((push) => Object.keys(push.body as object).filter((key) => !PUSH_KEYS.includes(key)))).toEqual([]);
  const mismatches: string[] = [];
  for (const { entry } of sent) {
    const matching = pushes.filter((push) => (push.body as { "call-id"?: string })["call-id"] === entry.callId);
    if (!entry.push) {
      if (matching.length) mismatches.push(`${entry.file}: pushed though malformed`);
      continue;
    }
    if (matching.length !== 1) {
      mismatches.push(`${entry.file}: ${matching.length} pushes`);
      continue;
    }
    const body = matching[0].body as { [key: string]: unknown; aps: { "call-id": unknown } };
    if (matching[0].token !== SLEEPER_TOKEN) mismatches.push(`${entry.file}: pushed to ${matching[0].token}`);
    if (body.aps["call-id"] !== entry.callId) mismatches.push(`${entry.file}: aps.call-id ${JSON.stringify(body.aps["call-id"])}`);
    if (body["caller-id-number"] !== entry.caller!.number) mismatches.push(`${entry.file}: number ${JSON.stringify(body["caller-id-number"])} ≠ ${JSON.stringify(entry.caller!.number)}`);
    const name = body["caller-id-name"];
    if (typeof name !== "string") mismatches.push(`${entry.file}: name is ${typeof name}`);
    // An over-long name is cut to fit the 5 KiB VoIP limit, marked with "…": a prefix of what was sent.
    else if (entry.caller!.name !== null && name !== entry.caller!.name && !(name.endsWith("…") && entry.caller!.name.startsWith(name.slice(0, -1)))) {
      mismatches.push(`${entry.file}: name ${JSON.stringify(name).slice(0, 80)} ≠ ${JSON.stringify(entry.caller!.name).slice(0, 80)}`);
    }
  }
  const pushed = sent.filter((item) => item.entry.push).length;
  console.log(`[faults] hostile INVITEs: ${invites.length} sent, all answered; ${pushes.length} pushes for ${pushed} callable, ${mismatches.length} mismatches`);
  expect(mismatches).toEqual([]);
  // APNs accepted every push: no answer made the helper drop the sleeper's record along the way.
  expect(pushes.filter((push) => push.status !== 200).map((push) => `${push.token} ${push.status}`)).toEqual([]);
  expect(devices().get(`sleeper@${DOMAIN}`)).toContain(SLEEPER_TOKEN);
  expect(kamailioPids(pusherStartPid(pusher))).toEqual(kamailioBefore);
}, 120000);
// A REGISTER whose Contact repeats a push param with another value (pn-tok, app-id, pn-type, pn-provider, or the
// URI and header forms disagreeing) is refused, since which one the phone meant is unknowable; a Contact URI with
// a NUL byte inside carries no push binding. Either way the records stay as they were.
it("changes no record for conflicting push params or a NUL inside the Contact URI", async () => {
  const entries = manifest.entries.filter((entry) => entry.knownBug === "conflicting-params" || entry.knownBug === "nul-in-contact-uri");
  expect(entries.length).toBeGreaterThan(0);
  const changed: string[] = [];
  for (const entry of entries) {
    const before = devices().get(entry.aor);
    expect((await client.send(messageOf(entry), { timeoutMs: 4000 }).final)?.status).toBeDefined();
    if (devices().get(entry.aor) !== before) changed.push(entry.file);
  }
  expect(changed).toEqual([]);
}, 30000);

// A caller id that is not UTF-8 (Latin-1 "Caf\xe9", lone surrogate bytes) once made the plugin throw "internal
// error" (Duktape misreads such bytes), so the call was not pushed. Caller-id headers are now read from
// Kamailio's hex of their raw bytes (src/plugin/sip-message.ts headerText), invalid bytes becoming U+FFFD.
it("pushes a call whose caller id is not UTF-8, with the name as valid JSON", async () => {
  const { apns } = fixture;
  const entries = manifest.entries.filter((entry) => entry.knownBug === "non-utf8");
  expect(entries.length).toBeGreaterThan(0);
  const requests = entries.map((entry) => client.send(messageOf(entry), { timeoutMs: 4000 }));
  await Promise.all(requests.map((request) => request.final));
  for (const [i, entry] of entries.entries()) {
    expect(requests[i].finals()).toHaveLength(1);
    const pushes = apns.requests.filter((push) => (push.body as { "call-id"?: string } | undefined)?.["call-id"] === entry.callId);
    expect(pushes).toHaveLength(1);
    expect(typeof (pushes[0].body as { "caller-id-name": unknown })["caller-id-name"]).toBe("string");
  }
}, 30000);

// The helper link (evapi, loopback only) is not authenticated: whatever connects there may send anything. A frame
// that is not a helper message is dropped with one error line and changes nothing.
it("ignores a malformed message on the helper link, with one error line", async () => {
  const { pusher } = fixture;
  const before = devices();
  const link = net.connect(pusher.linkPort, "127.0.0.1");
  await new Promise<void>((done, fail) => link.once("connect", done).once("error", fail));
  link.write(encodeNetstring("{not json"));
  await pusher.waitFor(/pusher: malformed message from the helper ignored \(9 bytes\)/, 5000);
  link.destroy();
  expect(pusher.output().match(/malformed message from the helper ignored/g)).toHaveLength(1);
  expect(devices()).toEqual(before);
});

afterAll(() => {
  if (process.env.CORPUS_ONLY) console.log(fixture.pusher.output().split("\n").filter((line) => /ERROR|WARN|CRIT|BUG/.test(line) && !/device stored/.test(line)).join("\n").slice(0, 6000));
});
