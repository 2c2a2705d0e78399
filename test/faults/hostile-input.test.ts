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
  /** The final answer it must get, when it is not the registrar's or the call's own (a header over the cfg's limits). */
  status?: number;
  reason?: string;
}

const CORPUS = join(ROOT, "test", "corpus");
const manifest: { domain: string; victimToken: string; appId: string; entries: CorpusEntry[] } = JSON.parse(
  readFileSync(join(CORPUS, "manifest.json"), "utf8"),
);
if (process.env.CORPUS_ONLY)
  manifest.entries = manifest.entries.filter((entry) => new RegExp(process.env.CORPUS_ONLY!).test(entry.file));
const SLEEPER_TOKEN = "5eeb5eeb5eeb5eeb5eeb5eeb5eeb5eeb";
// Keys an incoming-call APNs body may have (src/helper/apns-payload.ts).
const PUSH_KEYS = [
  "aps",
  "call-id",
  "caller-id-number",
  "caller-id-name",
  "proxy",
  "utc_unix_timestamp_ms",
  "registration-token",
  "account-ref",
];

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
  // The hostile sender plays a trusted peer (loopback: its P-Asserted-Identity and Remote-Party-ID are read, and
  // the corpus checks what of them reaches a push) that calls one callee far beyond the per-AOR limits
  // (faults/hostile-subscribers tests those).
  fixture = await startWakeFixture({
    calls: {
      strategy: "push-first",
      trustedSources: ["127.0.0.0/8"],
      maxHeldPerAor: 1000,
      maxPushesPerAorPerMinute: 1000,
    },
    timers: { pushWaitMs: 1000 },
  });
  // The sleeper's PushKit token is one APNs issued: every push to it is accepted, none drops its record.
  fixture.apns.addDevice(SLEEPER_TOKEN, { bundle: APP_ID, kind: "voip" });
  [client, victim, sleeper] = await Promise.all([0, 1, 2].map(() => SipClient.open(fixture.pusher.sipPort)));
  expect(new Set([client.address, victim.address, sleeper.address]).size).toBe(3);
  // Contact sip:c-victim@<victim's address:port>: the URI the corpus's hostile REGISTERs for the victim name.
  expect((await victim.send(register(victim, "victim", DOMAIN, pushParams(manifest.victimToken))).final)?.status).toBe(
    200,
  );
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
  const wrongAnswers: string[] = [];
  const statuses = new Map<number, number>();
  let dropped = 0;
  let before = devices();
  for (const entry of manifest.entries.filter((candidate) => candidate.method === "REGISTER" && !candidate.knownBug)) {
    const answer = await client.send(messageOf(entry), {
      transport: entry.transport,
      timeoutMs: entry.unanswered ? 2000 : 8000,
    }).final;
    if (answer) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    else if (entry.unanswered) dropped++;
    else unanswered.push(entry.file);
    if (entry.status && (answer?.status !== entry.status || answer.reason !== entry.reason))
      wrongAnswers.push(`${entry.file}: ${answer?.status} ${answer?.reason}`);
    const after = devices();
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter(
      (aor) => before.get(aor) !== after.get(aor),
    );
    const allowed = entry.expect === "stores" || entry.expect === "maybe" ? [entry.aor] : [];
    for (const aor of changed) {
      const record = after.get(aor) ?? "";
      const holdsSent = (entry.tokens ?? []).some((token) => record.includes(token));
      if (!allowed.includes(aor) || !holdsSent)
        wrongChanges.push(
          `${entry.file}: ${aor} ${before.get(aor) ?? "(none)"} → ${after.get(aor) ?? "(removed)"}`.slice(0, 400),
        );
    }
    if (entry.expect === "stores") {
      const record = after.get(entry.aor) ?? "";
      const missing = (entry.tokens ?? []).filter((token) => !record.includes(token));
      if (answer?.status !== 200 || missing.length)
        notStored.push(`${entry.file}: ${answer?.status} missing ${missing.length} token(s)`);
    }
    before = after;
  }
  console.log(
    `[faults] hostile REGISTERs: ${manifest.entries.filter((e) => e.method === "REGISTER").length} sent, answers ${JSON.stringify(Object.fromEntries(statuses))}, ${dropped} dropped unparsed by Kamailio's core`,
  );
  expect(unanswered).toEqual([]);
  expect(wrongAnswers).toEqual([]);
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
    const batch = invites.slice(i, i + 40).map((entry) => ({
      entry,
      request: client.send(messageOf(entry), {
        transport: entry.transport,
        timeoutMs: entry.unanswered ? 3000 : 8000,
      }),
    }));
    await Promise.all(batch.map((item) => item.request.final));
    sent.push(...batch);
  }
  await new Promise((done) => setTimeout(done, 500));
  const unanswered = sent
    .filter((item) => item.request.finals().length !== (item.entry.unanswered ? 0 : 1))
    .map((item) => `${item.entry.file}: ${item.request.finals().length} final answers`);
  expect(unanswered).toEqual([]);
  const wrongAnswers = sent
    .filter(
      (item) =>
        item.entry.status &&
        (item.request.finals()[0]?.status !== item.entry.status ||
          item.request.finals()[0]?.reason !== item.entry.reason),
    )
    .map((item) => `${item.entry.file}: ${item.request.finals()[0]?.status} ${item.request.finals()[0]?.reason}`);
  expect(wrongAnswers).toEqual([]);

  const pushes = apns.requests.slice(firstPush);
  // Every body the mock received is JSON with only the push's own keys.
  expect(pushes.filter((push) => push.body === undefined).map((push) => push.rawBody.slice(0, 200))).toEqual([]);
  expect(pushes.flatMap((push) => Object.keys(push.body as object).filter((key) => !PUSH_KEYS.includes(key)))).toEqual(
    [],
  );
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
    if (body.aps["call-id"] !== entry.callId)
      mismatches.push(`${entry.file}: aps.call-id ${JSON.stringify(body.aps["call-id"])}`);
    if (body["caller-id-number"] !== entry.caller!.number)
      mismatches.push(
        `${entry.file}: number ${JSON.stringify(body["caller-id-number"])} ≠ ${JSON.stringify(entry.caller!.number)}`,
      );
    const name = body["caller-id-name"];
    if (typeof name !== "string") mismatches.push(`${entry.file}: name is ${typeof name}`);
    // An over-long name is cut to fit the 5 KiB VoIP limit, marked with "…": a prefix of what was sent.
    else if (
      entry.caller!.name !== null &&
      name !== entry.caller!.name &&
      !(name.endsWith("…") && entry.caller!.name.startsWith(name.slice(0, -1)))
    ) {
      mismatches.push(
        `${entry.file}: name ${JSON.stringify(name).slice(0, 80)} ≠ ${JSON.stringify(entry.caller!.name).slice(0, 80)}`,
      );
    }
  }
  const pushed = sent.filter((item) => item.entry.push).length;
  console.log(
    `[faults] hostile INVITEs: ${invites.length} sent, all answered; ${pushes.length} pushes for ${pushed} callable, ${mismatches.length} mismatches`,
  );
  expect(mismatches).toEqual([]);
  // APNs accepted every push: no answer made the helper drop the sleeper's record along the way.
  expect(pushes.filter((push) => push.status !== 200).map((push) => `${push.token} ${push.status}`)).toEqual([]);
  expect(devices().get(`sleeper@${DOMAIN}`)).toContain(SLEEPER_TOKEN);
  expect(kamailioPids(pusherStartPid(pusher))).toEqual(kamailioBefore);
}, 120000);

// Instance ids, app ids and User-Agents are logged; decoded from %0D%0A or sent as raw bytes they held CR, LF and ESC
// that started forged log lines (the corpus's FORGED-LOG-LINE) and drove the operator's terminal. Every field of the
// plugin's log lines is escaped (src/log-text.ts); Kamailio's own lines are not the plugin's to judge.
it("escapes every control character a hostile REGISTER put in a logged field: no forged line, no ESC", async () => {
  // The corpus's REGISTERs whose logged fields break lines or drive terminals (sent by the test above too).
  const entries = manifest.entries.filter(
    (entry) =>
      /crlf-encoded|lf-encoded|forged-log-line|user-agent-esc|instance-esc/.test(entry.file) &&
      entry.method === "REGISTER",
  );
  expect(entries.length).toBeGreaterThan(5);
  for (const entry of entries)
    expect((await client.send(messageOf(entry), { timeoutMs: 4000 }).final)?.status).toBeDefined();
  // Logged by then, escaped or not (a log line may reach the output after the SIP answer).
  await fixture.pusher.waitFor(/FORGED-TERMINAL/, 5000);
  await fixture.pusher.waitFor(/pusher: push params refused aor=victim@example\.com app=x/, 5000);
  await new Promise((done) => setTimeout(done, 200));
  // `pusher start` prints Kamailio's lines one per line (CR and LF end one), each after "[kamailio] ".
  const lines = fixture.pusher.output().split("\n");
  const forged = lines.filter(
    (line) =>
      line.includes("FORGED-LOG-LINE") && !line.includes("\\x0d\\x0a 0(999) INFO: <script>: pusher: FORGED-LOG-LINE"),
  );
  expect(forged.map((line) => JSON.stringify(line).slice(0, 300))).toEqual([]);
  const pluginLines = lines.filter((line) => line.includes(" pusher: "));
  expect(
    pluginLines.filter((line) => /[\x00-\x1f\x7f]/.test(line)).map((line) => JSON.stringify(line).slice(0, 300)),
  ).toEqual([]);
  // The hostile values are there, escaped, where the lines name them.
  expect(
    pluginLines.some((line) => line.includes("User-Agent 'Hostile/1.0 \\x1b[2J\\x1b[31mFORGED-TERMINAL' ignored")),
  ).toBe(true);
  expect(
    pluginLines.some((line) => line.includes("app=x\\x0d\\x0a 0(999) INFO: <script>: pusher: FORGED-LOG-LINE")),
  ).toBe(true);
});

// A REGISTER whose Contact repeats a push param with another value (pn-tok, app-id, pn-type, pn-provider, or the
// URI and header forms disagreeing) is refused, since which one the phone meant is unknowable; a Contact URI with
// a NUL byte inside carries no push binding. Either way the records stay as they were.
it("changes no record for conflicting push params or a NUL inside the Contact URI", async () => {
  const entries = manifest.entries.filter(
    (entry) => entry.knownBug === "conflicting-params" || entry.knownBug === "nul-in-contact-uri",
  );
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
    const pushes = apns.requests.filter(
      (push) => (push.body as { "call-id"?: string } | undefined)?.["call-id"] === entry.callId,
    );
    expect(pushes).toHaveLength(1);
    expect(typeof (pushes[0].body as { "caller-id-name": unknown })["caller-id-name"]).toBe("string");
  }
}, 30000);

// The helper link (evapi, loopback only) obeys only the helper that proved the link secret
// (faults/link-authentication): while it is connected, any other connection is closed at once, with one line, and
// whatever it wrote changes nothing.
it("closes another connection to the helper link at once, with one line, and ignores what it wrote", async () => {
  const { pusher } = fixture;
  const before = devices();
  const link = net.connect(pusher.linkPort, "127.0.0.1");
  const closed = new Promise<void>((done) => link.once("close", () => done()));
  link.on("error", () => {});
  link.write(encodeNetstring("{not json"));
  await closed;
  await pusher.waitFor(
    /pusher: evapi connection from 127\.0\.0\.1:\d+ closed: the helper is connected and authenticated/,
    5000,
  );
  expect(pusher.output().match(/evapi connection from \S+ closed/g)).toHaveLength(1);
  expect(pusher.output()).not.toMatch(/malformed message from the helper/);
  expect(devices()).toEqual(before);
});

afterAll(() => {
  if (process.env.CORPUS_ONLY)
    console.log(
      fixture.pusher
        .output()
        .split("\n")
        .filter((line) => /ERROR|WARN|CRIT|BUG/.test(line) && !/device stored/.test(line))
        .join("\n")
        .slice(0, 6000),
    );
});
