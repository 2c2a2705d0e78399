// Security of the registration side with the reference cfg's digest auth (sip.auth: true, users added with
// `pusher users add`): push records change only after authentication, and the one-time registration token a
// push carries works once, only for its AOR, only within its lifetime (with PUSHER_TOKEN_SKIPS_AUTH=1, the
// knob that lets it stand in for digest auth).
import { afterAll, beforeAll, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { MockApns } from "../support/mock-apns";
import { ROOT, TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { SipClient, contactUri, contactUserOf, invite, register, registerWithDigest } from "./support/sip-client";
import { SeparateServices, separateServices, waitUntil } from "./support/processes";

const TOKEN_SECONDS = 2;
const ALICE_TOKEN = "a11ce0000000000000000000000000aa";
const ALICE_NEW_TOKEN = "a11ce0000000000000000000000000bb";
const EVIL_TOKEN = "e7110000000000000000000000000066";

let apns: MockApns;
let services: SeparateServices;
/** alice's phone and mallory (the attacker), each on its own loopback address. */
let alice: SipClient;
let mallory: SipClient;
const ALICE = `alice@${DOMAIN}`;

function devices(): Map<string, string> {
  const records = new Map<string, string>();
  for (const match of services.rpc("htable.dump", "pusher_devices").matchAll(/name: (.*)\n\s*value: (.*)\n/g))
    records.set(match[1], match[2]);
  return records;
}

function cli(...args: string[]): string {
  return execFileSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", services.configPath, ...args], {
    encoding: "utf8",
  });
}

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  services = await separateServices(
    {
      userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
      apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) } },
      calls: { strategy: "push-first", registrationTokenSeconds: TOKEN_SECONDS },
      timers: { pushWaitMs: 8000 },
    },
    { auth: true },
  );
  cli("users", "add", ALICE, "alice-secret-1");
  cli("users", "add", `bob@${DOMAIN}`, "bob-secret-2");
  // alice's PushKit tokens are ones APNs issued: the pushes of this file are accepted and keep her record.
  for (const token of [ALICE_TOKEN, ALICE_NEW_TOKEN]) apns.addDevice(token, { bundle: APP_ID, kind: "voip" });
  await services.startKamailio({ PUSHER_TOKEN_SKIPS_AUTH: "1" }); // WITH_AUTH: sip.auth (options.auth)
  services.startHelper();
  await waitUntil(() => /pusher: helper connected/.test(services.kamailioOutput()), 10000, "the helper");
  alice = await SipClient.open(services.sipPort);
  mallory = await SipClient.open(services.sipPort);
  expect(alice.address).not.toBe(mallory.address);
  expect(
    await registerWithDigest(
      alice,
      register(alice, "alice", DOMAIN, pushParams(ALICE_TOKEN)),
      "alice",
      "alice-secret-1",
    ),
  ).toBe(200);
  expect(devices().get(ALICE)).toContain(ALICE_TOKEN);
}, 30000);

afterAll(async () => {
  alice?.close();
  mallory?.close();
  await services?.stop();
  await apns?.close();
});

it("refuses unauthenticated REGISTERs for someone else's AOR: they create, change and delete nothing", async () => {
  const before = devices();
  // alice's own Contact URI (her device's instance), at her address: mallory names it from his.
  const aliceContact = contactUri(alice, contactUserOf("alice"));
  const attempts: [string, string][] = [
    ["new device for alice", register(mallory, "alice", DOMAIN, pushParams(EVIL_TOKEN))],
    [
      "alice's own instance, evil token",
      register(mallory, "alice", DOMAIN, pushParams(EVIL_TOKEN)).replace(
        /^Contact: .*$/m,
        `Contact: ${aliceContact}${pushParams(EVIL_TOKEN)}`,
      ),
    ],
    [
      "Contact: * for alice",
      register(mallory, "alice", DOMAIN, "", { expires: 0 }).replace(/^Contact: .*$/m, "Contact: *"),
    ],
    [
      "alice's instance expires=0",
      register(mallory, "alice", DOMAIN, "").replace(/^Contact: .*$/m, `Contact: ${aliceContact};expires=0`),
    ],
    ["a record for carol, who has none", register(mallory, "carol", DOMAIN, pushParams(EVIL_TOKEN))],
  ];
  const statuses: string[] = [];
  for (const [what, raw] of attempts) {
    const answer = await mallory.send(raw).final;
    statuses.push(`${what}: ${answer?.status}`);
  }
  // bob is a user, but not alice: his credentials do not let him register her AOR.
  const asBob = await registerWithDigest(
    mallory,
    register(mallory, "alice", DOMAIN, pushParams(EVIL_TOKEN)).replace(/^From: <sip:alice@/m, "From: <sip:bob@"),
    "bob",
    "bob-secret-2",
  );
  statuses.push(`bob's credentials for alice: ${asBob}`);
  expect(statuses).toEqual(attempts.map(([what]) => `${what}: 401`).concat([`bob's credentials for alice: ${asBob}`]));
  expect(asBob).not.toBe(200);
  expect(devices()).toEqual(before);
  expect(devices().has(`carol@${DOMAIN}`)).toBe(false);
  // Control: alice herself may change her record.
  expect(
    await registerWithDigest(
      alice,
      register(alice, "alice", DOMAIN, pushParams(ALICE_NEW_TOKEN)),
      "alice",
      "alice-secret-1",
    ),
  ).toBe(200);
  expect(devices().get(ALICE)).toContain(ALICE_NEW_TOKEN);
  expect(
    await registerWithDigest(
      alice,
      register(alice, "alice", DOMAIN, pushParams(ALICE_TOKEN)),
      "alice",
      "alice-secret-1",
    ),
  ).toBe(200);
});

/** Calls alice (held, pushed) and returns the registration token of the push. */
async function tokenFromPush(): Promise<string> {
  const pushesBefore = apns.requestsFor(ALICE_TOKEN).length;
  mallory.send(invite(mallory, "alice", DOMAIN));
  await waitUntil(() => apns.requestsFor(ALICE_TOKEN).length > pushesBefore, 5000, "the push");
  const body = apns.requestsFor(ALICE_TOKEN)[pushesBefore].body as { "registration-token"?: string };
  expect(body["registration-token"]).toMatch(/^[0-9a-f-]{36}$/);
  return body["registration-token"]!;
}

it("accepts the push's registration token once, only for its AOR, only within its lifetime", async () => {
  const token = await tokenFromPush();
  const withToken = (client: SipClient, user: string, value: string) =>
    register(client, user, DOMAIN, pushParams(ALICE_TOKEN), { extraHeaders: [`X-Token-Reg: ${value}`] });
  // Not for bob's AOR (no password given: the token is all he has).
  expect((await mallory.send(withToken(mallory, "bob", token)).final)?.status).toBe(401);
  // For alice, once: no digest needed; the Contact param form is accepted too.
  expect((await alice.send(withToken(alice, "alice", token)).final)?.status).toBe(200);
  expect((await alice.send(withToken(alice, "alice", token)).final)?.status).toBe(401);
  const second = await tokenFromPush();
  expect(second).not.toBe(token);
  expect(
    (await alice.send(register(alice, "alice", DOMAIN, `${pushParams(ALICE_TOKEN)};x-token-reg=${second}`)).final)
      ?.status,
  ).toBe(200);
  expect(
    (await alice.send(register(alice, "alice", DOMAIN, `${pushParams(ALICE_TOKEN)};x-token-reg=${second}`)).final)
      ?.status,
  ).toBe(401);
  // Not after its lifetime.
  const late = await tokenFromPush();
  await new Promise((done) => setTimeout(done, TOKEN_SECONDS * 1000 + 500));
  expect((await alice.send(withToken(alice, "alice", late)).final)?.status).toBe(401);
  // A token never seen.
  expect((await alice.send(withToken(alice, "alice", "00000000-0000-4000-8000-000000000000")).final)?.status).toBe(401);
  // APNs accepted every push: alice's record was never dropped in between, so the tokens alone decided.
  expect(apns.requestsFor(ALICE_TOKEN).map((request) => request.status)).toEqual([200, 200, 200]);
  expect(devices().get(ALICE)).toContain(ALICE_TOKEN);
}, 60000);

// The registration-token route runs the plugin before authentication (route PUSHER_REGISTER_BEFORE_AUTH): a header
// longer than the plugin reads is answered 400 there, before any JavaScript and before the challenge.
it("answers 400 to an unauthenticated REGISTER whose Contact is longer than the plugin reads, before the challenge", async () => {
  const before = devices();
  const padded = register(
    mallory,
    "alice",
    DOMAIN,
    `${pushParams(EVIL_TOKEN)};x-token-reg=00000000-0000-4000-8000-000000000001;x-pad=${"p".repeat(8200)}`,
    {
      extraHeaders: ["X-Token-Reg: 00000000-0000-4000-8000-000000000001"],
    },
  );
  const answer = await mallory.send(padded, { transport: "tcp" }).final;
  expect([answer?.status, answer?.reason]).toEqual([400, "Header Too Long"]);
  expect(services.kamailioOutput()).toMatch(
    /pusher: REGISTER from \S+ answered 400: its Contact header is longer than the plugin reads/,
  );
  expect(services.kamailioOutput()).not.toMatch(/registration token 000000…0001 refused/);
  expect(devices()).toEqual(before);
});
