// Hostile subscribers, in the shape of a deployment: digest auth on (sip.auth), users added with `pusher users
// add`, an iOS app (mock APNs) and an Android app added with `pusher apps add-firebase` (mock FCM), every phone
// and caller on its own loopback address. Each case is an attack a subscriber could make with his own account:
// naming another Firebase project or APNs topic in his binding (the whole app's pushes must not stop), looping
// INVITEs to one callee (limits per AOR, counted in metrics), putting any name on the callee's screen with
// P-Asserted-Identity, registering someone else's push token, or registering a user that differs from another
// only in case.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MockApns } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { ROOT, TEST_CA_DIR } from "../support/pusher-process";
import { DOMAIN, nextAddress } from "../support/topology";
import { APP_ID, pushParams } from "../support/wake-fixture";
import { CALLER_NUMBER, SipClient, cancel, invite, register, registerWithDigest } from "./support/sip-client";
import { SeparateServices, separateServices, waitUntil } from "./support/processes";

const ANDROID_APP = "com.example.android";
const ANDROID_PROJECT = "acme-android";
const PASSWORD = "secret-of-";
/** The callers trusted to assert an identity (calls.trustedSources): a gateway on its own address. */
const GATEWAY_ADDRESS = nextAddress();
const LIMITS = { maxHeldPerAor: 2, maxPushesPerAorPerMinute: 3 };
const ERIN_TOKEN = "e1e1e1e1" + "0".repeat(56);

let apns: MockApns;
let fcm: MockFcm;
let services: SeparateServices;
const clients: SipClient[] = [];

function cli(...args: string[]): string {
  return execFileSync(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", services.configPath, ...args], {
    encoding: "utf8",
  });
}

/** The pusher_devices items by AOR key. */
function devices(): Map<string, string> {
  const records = new Map<string, string>();
  for (const match of services.rpc("htable.dump", "pusher_devices").matchAll(/name: (.*)\n\s*value: (.*)\n/g))
    records.set(match[1], match[2]);
  return records;
}

async function client(address?: string): Promise<SipClient> {
  const opened = await SipClient.open(services.sipPort, address ? { address } : {});
  clients.push(opened);
  return opened;
}

/** A phone of `user` (a `pusher users add`ed user) that registers `params` with its password; the final status. */
async function registerAs(
  phone: SipClient,
  user: string,
  params: string,
  domain = DOMAIN,
): Promise<number | undefined> {
  return registerWithDigest(phone, register(phone, user, domain, params), user, PASSWORD + user);
}

/** An RFC 8599 FCM binding of the Android app naming `project`, for the device `instance`. */
const fcmParams = (token: string, project: string, instance = "android") =>
  `;+sip.instance="<urn:uuid:${instance}>";pn-provider=fcm;pn-prid=${token};pn-param=${project};app-id=${ANDROID_APP}`;

beforeAll(async () => {
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  services = await separateServices(
    {
      userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
      apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(TEST_CA_DIR, "apple-app.pem") }) } },
      calls: { strategy: "push-first", ...LIMITS, trustedSources: [`${GATEWAY_ADDRESS}/32`] },
      timers: { pushWaitMs: 10000 },
    },
    { auth: true },
  );
  // As an operator adds the Android app: the command writes the service account's project into projectIds.
  const accountFile = fcm.createServiceAccount(mkdtempSync(join(tmpdir(), "pusher-hostile-")), ANDROID_PROJECT);
  cli("apps", "add-firebase", ANDROID_APP, accountFile, "--host", fcm.host);
  expect(JSON.parse(readFileSync(services.configPath, "utf8")).apps[ANDROID_APP].firebase.projectIds).toEqual([
    ANDROID_PROJECT,
  ]);
  for (const user of ["anna", "mallory", "vera", "paul", "alice", "bob", "Dave", "dave", "Erin"])
    cli("users", "add", `${user}@${DOMAIN}`, PASSWORD + user);
  // Erin's phone registered before AOR keys kept the user's case: its record is stored under erin@example.com.
  apns.addDevice(ERIN_TOKEN, { bundle: APP_ID, kind: "voip" });
  const legacy = {
    aor: `erin@${DOMAIN}`,
    instance: "urn:uuid:erin-phone",
    appId: APP_ID,
    provider: "apple",
    token: ERIN_TOKEN,
    userAgent: "MyMobileApp iOS 1.0",
    proxy: "sip:127.0.0.1:5060;transport=udp",
    registeredAtMs: Date.now(),
  };
  execFileSync("sqlite3", [
    join(services.dir, "state", "devices.sqlite"),
    "CREATE TABLE IF NOT EXISTS pusher_devices (aor TEXT PRIMARY KEY, devices TEXT NOT NULL, expires INTEGER NOT NULL);" +
      `INSERT INTO pusher_devices VALUES ('erin@${DOMAIN}', '${JSON.stringify({ [legacy.instance]: legacy })}', ${Math.floor(Date.now() / 1000) + 86400});`,
  ]);
  await services.startKamailio();
  services.startHelper();
  await waitUntil(() => /pusher: helper connected/.test(services.kamailioOutput()), 10000, "the helper");
}, 30000);

afterAll(async () => {
  for (const opened of clients) opened.close();
  await services?.stop();
  await Promise.all([apns?.close(), fcm?.close()]);
});

/** An INVITE from `caller` to `callee`@`domain`; its text (for the CANCEL) and its transaction. */
function call(
  caller: SipClient,
  callee: string,
  options: { domain?: string; extraHeaders?: string[]; fromDisplay?: string } = {},
) {
  const text = invite(caller, callee, options.domain ?? DOMAIN, options);
  return { text, request: caller.send(text) };
}

/** Waits until `pushes()` reaches `count` (the call's push went out), then the caller cancels the call: 487. */
async function cancelAfterPush(
  caller: SipClient,
  placed: ReturnType<typeof call>,
  pushes: () => number,
  count: number,
): Promise<void> {
  await waitUntil(() => pushes() >= count, 8000, `push ${count}`);
  caller.send(cancel(placed.text));
  expect((await placed.request.final)?.status).toBe(487);
}

function statsItem(name: string): number {
  const match = new RegExp(`name: ${name}\\n\\s*value: (\\d+)`).exec(services.rpc("htable.dump", "pusher_stats"));
  return match ? Number(match[1]) : 0;
}

describe("a binding that names what its app does not own", () => {
  it("is refused at REGISTER (555), and the Android app's other users still get their pushes", async () => {
    const annaToken = "anna-token:APA91b" + "a".repeat(40);
    const anna = await client();
    expect(await registerAs(anna, "anna", fcmParams(annaToken, ANDROID_PROJECT))).toBe(200);

    // mallory names a project the service account does not own (FCM answers 403 PERMISSION_DENIED there), and an
    // APNs topic that is not the iOS app's bundle.
    const mallory = await client();
    expect(
      await registerAs(mallory, "mallory", fcmParams("mallory-token:APA91b" + "m".repeat(40), "someone-elses-project")),
    ).toBe(555);
    const otherTopic = `;+sip.instance="<urn:uuid:iphone>";pn-provider=apns;pn-prid=${"ab".repeat(32)};pn-param=ABCDE12345.com.other.app.voip;app-id=${APP_ID}`;
    expect(await registerAs(mallory, "mallory", otherTopic)).toBe(555);
    const refusals = [
      /push params refused aor=mallory@example.com app=com.example.android .*Firebase project id "someone-elses-project" \(pn-param\) is not one of apps.com.example.android.firebase.projectIds/,
      /push params refused aor=mallory@example.com app=com.app.mymobileapp .*APNs topic "com.other.app" \(pn-param\) is not the bundle of app com.app.mymobileapp/,
    ];
    await waitUntil(() => refusals.every((line) => line.test(services.kamailioOutput())), 3000, "Kamailio's log lines");
    expect([...devices().keys()]).not.toContain(`mallory@${DOMAIN}`);

    // His call every 25 s (a push to his project got FCM's 403, which used to hold the whole app's pushes for
    // 30 s), then anna's call: her push goes out.
    const caller = await client();
    const mallorysStatus = (await call(caller, "mallory").request.final)?.status;
    const toAnna = call(caller, "anna");
    await waitUntil(
      () => fcm.requestsFor(annaToken).length > 0 || services.helperOutput().includes(`token=${annaToken.slice(0, 6)}`),
      8000,
      "anna's push",
    );
    expect(fcm.requestsFor(annaToken).map((request) => [request.project, request.status])).toEqual([
      [ANDROID_PROJECT, 200],
    ]);
    expect(fcm.requests.filter((request) => request.project !== ANDROID_PROJECT)).toEqual([]);
    expect(services.helperOutput()).not.toContain("credentials alarm");
    expect(mallorysStatus).toBe(404);
    caller.send(cancel(toAnna.text));
    expect((await toAnna.request.final)?.status).toBe(487);
  });
});

describe("one caller looping INVITEs to one callee", () => {
  it("holds at most calls.maxHeldPerAor of its calls (486 beyond) and pushes at most calls.maxPushesPerAorPerMinute a minute (480 without a push beyond), counted in metrics", async () => {
    const token = apns.newDevice(APP_ID, "voip");
    const vera = await client();
    expect(await registerAs(vera, "vera", pushParams(token))).toBe(200);
    const pushes = () => apns.requestsFor(token).length;
    const caller = await client();
    const held = [call(caller, "vera"), call(caller, "vera")];
    await waitUntil(() => pushes() === 2, 8000, "two pushes");
    expect((await call(caller, "vera").request.final)?.status).toBe(486);
    for (const placed of held) caller.send(cancel(placed.text));
    for (const placed of held) expect((await placed.request.final)?.status).toBe(487);

    // Nothing is held now: the third call of the minute is pushed, the fourth is not.
    await cancelAfterPush(caller, call(caller, "vera"), pushes, 3);
    const limited = call(caller, "vera");
    expect((await limited.request.final)?.status).toBe(480);
    expect(pushes()).toBe(3);
    expect([statsItem("calls_busy"), statsItem("calls_push_limited")]).toEqual([1, 1]);
    const metricsPort = JSON.parse(readFileSync(services.configPath, "utf8")).metrics.port;
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toMatch(/^pusher_calls_busy_total 1$/m);
    expect(text).toMatch(/^pusher_calls_push_limited_total 1$/m);
  });
});

describe("caller id", () => {
  it("names the caller from P-Asserted-Identity or Remote-Party-ID only when a trusted source sent them; from anyone else, from From", async () => {
    const token = apns.newDevice(APP_ID, "voip");
    const paul = await client();
    expect(await registerAs(paul, "paul", pushParams(token))).toBe(200);
    const pushed = (index: number) =>
      apns.requestsFor(token)[index].body as { "caller-id-name": string; "caller-id-number": string };
    const stranger = await client();
    const asserted = [
      'P-Asserted-Identity: "Your Bank" <sip:1000@example.com>',
      'Remote-Party-ID: "Your Bank" <sip:1000@example.com>;party=calling;screen=yes',
    ];
    await cancelAfterPush(
      stranger,
      call(stranger, "paul", { fromDisplay: '"Stranger"', extraHeaders: asserted }),
      () => apns.requestsFor(token).length,
      1,
    );
    expect(pushed(0)).toMatchObject({ "caller-id-name": "Stranger", "caller-id-number": CALLER_NUMBER });

    const gateway = await client(GATEWAY_ADDRESS);
    const reception = ['P-Asserted-Identity: "Reception" <sip:+15550100@example.com>'];
    await cancelAfterPush(
      gateway,
      call(gateway, "paul", { fromDisplay: '"Gateway"', extraHeaders: reception }),
      () => apns.requestsFor(token).length,
      2,
    );
    expect(pushed(1)).toMatchObject({ "caller-id-name": "Reception", "caller-id-number": "+15550100" });
  });
});

describe("a push token registered under another AOR", () => {
  it("stays with alice when bob registers it: only a REGISTER authenticated for her AOR could take it", async () => {
    const token = apns.newDevice(APP_ID, "voip");
    const alice = await client();
    expect(await registerAs(alice, "alice", pushParams(token))).toBe(200);
    const bob = await client();
    expect(await registerAs(bob, "bob", pushParams(token))).toBe(200);
    expect(devices().get(`alice@${DOMAIN}`)).toContain(token);
    expect(devices().get(`bob@${DOMAIN}`)).toContain(token);
    const kept =
      /device token also held by aor=alice@example.com instance=\S+: both records kept \(the REGISTER of aor=bob@example.com .* is not authenticated for aor=alice@example.com\)/;
    await waitUntil(() => kept.test(services.kamailioOutput()), 3000, "Kamailio's log line");
    // A call to alice still pushes her phone.
    const caller = await client();
    await cancelAfterPush(caller, call(caller, "alice"), () => apns.requestsFor(token).length, 1);
  });
});

describe("AORs whose users differ only in case (RFC 3261 §19.1.4: the user part is case-sensitive, the host is not)", () => {
  it("keeps Dave's and dave's devices apart, and finds Dave's whatever the case of the host", async () => {
    const daveToken = apns.newDevice(APP_ID, "voip");
    const otherDaveToken = apns.newDevice(APP_ID, "voip");
    const dave = await client();
    expect(await registerAs(dave, "Dave", pushParams(daveToken, "dave-phone"))).toBe(200);
    expect(await registerAs(dave, "Dave", pushParams(daveToken, "dave-phone"), "EXAMPLE.COM")).toBe(200);
    const otherDave = await client();
    expect(await registerAs(otherDave, "dave", pushParams(otherDaveToken))).toBe(200);
    expect(devices().get(`Dave@${DOMAIN}`)).toContain(daveToken);
    expect(devices().get(`Dave@${DOMAIN}`)).not.toContain(otherDaveToken);
    expect(devices().get(`dave@${DOMAIN}`)).not.toContain(daveToken);

    const caller = await client();
    await cancelAfterPush(caller, call(caller, "dave"), () => apns.requestsFor(otherDaveToken).length, 1);
    // Dave's call pushes Dave's phone only, and once it registers again (woken) rings it only: usrloc keeps the
    // two apart too (registrar case_sensitive 1).
    const toDave = call(caller, "Dave", { domain: "Example.COM" });
    await waitUntil(() => apns.requestsFor(daveToken).length === 1, 8000, "Dave's push");
    expect(await registerAs(dave, "Dave", pushParams(daveToken, "dave-phone"))).toBe(200);
    const invited = (phone: SipClient) =>
      phone.requestsReceived.filter((request) => request.startsWith("INVITE ")).length;
    await waitUntil(() => invited(dave) > 0, 5000, "the call delivered to Dave's phone");
    caller.send(cancel(toDave.text));
    expect((await toDave.request.final)?.status).toBe(487);
    expect([apns.requestsFor(daveToken).length, apns.requestsFor(otherDaveToken).length]).toEqual([1, 1]);
    expect(invited(otherDave)).toBe(0);
  });

  it("reads a record stored before (keyed all lower-cased) as its user's until the phone registers again", async () => {
    // `pusher devices` and a call find it under Erin's own AOR.
    const listed = JSON.parse(cli("devices", `Erin@${DOMAIN}`, "--json", "--show-tokens")) as {
      aor: string;
      token: string;
    }[];
    expect(listed.map((device) => [device.aor, device.token])).toEqual([[`erin@${DOMAIN}`, ERIN_TOKEN]]);
    const caller = await client();
    await cancelAfterPush(caller, call(caller, "Erin"), () => apns.requestsFor(ERIN_TOKEN).length, 1);
    // Her phone registers again: the record moves to her own key, token and all.
    const erin = await client();
    expect(await registerAs(erin, "Erin", pushParams(ERIN_TOKEN, "erin-phone"))).toBe(200);
    expect(devices().get(`Erin@${DOMAIN}`)).toContain(ERIN_TOKEN);
    expect(devices().has(`erin@${DOMAIN}`)).toBe(false);
  });
});
