// The spine, end to end: real Kamailio (started by `pusher start`), real sipp phones and callers, the real
// helper, and a mock APNs on 127.0.0.1 over HTTP/2 + TLS trusted through NODE_EXTRA_CA_CERTS. Phones are those
// of the test topology (test/support/topology.ts): users on a named domain, each phone on its own address with
// a Contact user unlike its AOR user, asleep the ways phones sleep (a NAT mapping gone, a TCP connection closed,
// a registration lapsed).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { callItems, callState, dumpEveryPusherTable, pluginErrorsIn } from "../support/kamailio-checks";
import { MockApns } from "../support/mock-apns";
import { PusherProcess } from "../support/pusher-process";
import { NAT_PRIVATE_ADDRESS, Phone } from "../support/topology";
import { waitUntil } from "../support/wait-until";
import {
  APP_ID,
  CALLER,
  USER_AGENT,
  WakeFixture,
  call,
  dropBindings,
  listeningPhone,
  pushParams,
  registerAndAnswer,
  registerPhone,
  sharedCallId,
  startWakeFixture,
  waitForPushes,
} from "../support/wake-fixture";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 4000, afterWakeMs: 5000 };
/** Team id of the RFC 8599 (Linphone) bindings of APP_ID. */
const TEAM_ID = "ABCDE12345";

let fixture: WakeFixture;
let apns: MockApns;
let pusher: PusherProcess;

function waitForPush(token: string): Promise<void> {
  return waitForPushes(apns, token, 1, 8000, pusher);
}

function devicesTable(): string {
  return pusher.rpc("htable.dump", "pusher_devices");
}

/** The value of item `name` in a `kamcmd htable.dump` of one table, or null. */
function itemValue(dump: string, name: string): string | null {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^\\s*name: ${escaped}\\s*\\n\\s*value: (.*)$`, "m").exec(dump)?.[1] ?? null;
}

/** The AOR's device records in pusher_devices (the marks of REGISTERs already applied come before the JSON). */
function devicesOf(aor: string): Record<string, Record<string, unknown>> {
  const value = itemValue(devicesTable(), aor);
  return value === null ? {} : JSON.parse(value.slice(value.indexOf("{")));
}

/** A token as the plugin logs it: its first 6 and last 4 characters. */
function masked(token: string): string {
  return `${token.slice(0, 6)}…${token.slice(-4)}`;
}

beforeAll(async () => {
  fixture = await startWakeFixture({ timers: TIMERS });
  ({ apns, pusher } = fixture);
}, 30000);

afterAll(async () => {
  await fixture?.stop();
});

beforeEach(() => {
  apns.requests.length = 0;
});

describe("a call to a phone with a push device record", () => {
  it("relays the INVITE to an awake phone (on TCP, its connection open) and sends no push", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(APP_ID);
    const callId = sharedCallId(phone);
    const answering = registerAndAnswer(pusher, phone, pushParams(token), callId);
    await pusher.waitFor(new RegExp(`device stored aor=${phone.aor} `));
    const caller = await call(pusher, phone, "call-answered.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    const answered = await answering;
    expect(answered.code, answered.output).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(0);
  });

  it("pushes a phone asleep behind NAT, then hands the call to it when it registers again from a new port", async () => {
    const phone = await Phone.create({ nat: true });
    const token = apns.newDevice(APP_ID);
    // Linphone's two-token form: a call-ended notice would reach its alert token, so "not told" below can fail.
    const alertToken = apns.newDevice(APP_ID, "alert");
    const params = pushParams(`${alertToken}:remote&${token}:voip`);
    await registerPhone(pusher, phone, params); // its NAT mapping (the REGISTER's port) is gone: asleep
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPush(token);

    const [push] = apns.requestsFor(token);
    expect(push.method).toBe("POST");
    expect(push.path).toBe(`/3/device/${token}`);
    expect(push.status).toBe(200);
    expect(push.headers["apns-topic"]).toBe(`${APP_ID}.voip`);
    expect(push.headers["apns-push-type"]).toBe("voip");
    expect(push.headers["apns-priority"]).toBe("10");
    expect(push.headers["apns-expiration"]).toBe("0");
    const body = push.body as Record<string, any>;
    expect(body.aps.alert["loc-key"]).toBe("IC_SIL");
    expect(body.aps.alert["loc-args"]).toEqual([`${CALLER.number} - ${CALLER.name}`]);
    expect(body.aps.sound).toBe("ring.caf");
    expect(body.aps["call-id"]).toBe(callId);
    expect(body["call-id"]).toBe(body.aps["call-id"]);
    expect(body["caller-id-number"]).toBe(CALLER.number);
    expect(body["caller-id-name"]).toBe(CALLER.name);
    expect(body.proxy).toBe(`sip:127.0.0.1:${pusher.sipPort};transport=udp`);
    expect(body.utc_unix_timestamp_ms).toMatch(/^\d{13}$/);
    expect(Math.abs(Number(body.utc_unix_timestamp_ms) - push.receivedAtMs)).toBeLessThan(5000);
    await pusher.waitFor(
      new RegExp(`push requested call-id=${callId} aor=${phone.aor} app=${APP_ID} token=${masked(token)}\n`),
      3000,
    );

    // The held call as the plugin keeps it: one call reference waiting under the callee's AOR, never its Contact.
    const calls = pusher.rpc("htable.dump", "pusher_calls");
    const waiting = JSON.parse(itemValue(calls, `wait:${phone.aor}`) ?? "[]") as string[];
    expect(waiting).toHaveLength(1);
    expect(JSON.parse(itemValue(calls, `call:${waiting[0]}`) ?? "null")).toMatchObject({
      callRef: waiting[0],
      aor: phone.aor,
      callId,
      failedInstances: [],
    });
    const keys = [...calls.matchAll(/name: (\S+)/g)].map((match) => match[1]);
    expect(keys.filter((key) => key.includes(phone.contactUser) || key.includes(NAT_PRIVATE_ADDRESS))).toEqual([]);

    const answered = await registerAndAnswer(pusher, await phone.newSocket(), params, callId);
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    // The phone that answered is the pushed device (same token, new socket): it gets no "answered elsewhere".
    await new Promise((done) => setTimeout(done, 300));
    expect(apns.requestsFor(token)).toHaveLength(1);
    expect(apns.requestsFor(alertToken)).toHaveLength(0);
    // Delivered and answered: the plugin keeps nothing of the call.
    await waitUntil(() => !callState(pusher.rpc).includes(callId), 3000, `no item of ${callId} in pusher_calls`);
  });

  it("pushes at once, without the invite-first wait, when the phone has a record but no registration", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    dropBindings(pusher, phone); // the binding lapsed; the device record stays
    const callId = sharedCallId(phone);
    const startedAt = Date.now();
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPush(token);
    expect(apns.requestsFor(token)[0].receivedAtMs - startedAt).toBeLessThan(TIMERS.inviteFirstMs);

    const answered = await registerAndAnswer(pusher, await phone.newSocket(), pushParams(token), callId);
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/182 <-+\s+1\s/); // held with Kazoo's "182 sending push notification" (calls.provisional)
  });

  it("pushes a registered phone that answers the INVITE with 100 Trying only, at t1 (a 100 proves nothing)", async () => {
    // Before: the 100 switched tm from fr_timer (t1) to fr_inv_timer (120 s), and the phone was never pushed in time.
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    const trying = await listeningPhone(pusher, phone, "trying-only.xml");
    await registerPhone(pusher, phone, pushParams(token));
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPush(token);

    const answered = await registerAndAnswer(pusher, await phone.newSocket(), pushParams(token), callId);
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect((await trying.run).code).toBe(0);
  });

  it("hands the call to a phone that wakes on the socket its Contact names (a REGISTER cfg answers without the plugin's JS)", async () => {
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    dropBindings(pusher, phone); // the binding lapsed; the device record stays
    const unchanged = () =>
      Number(/value:\s*(\d+)/.exec(pusher.rpc("htable.get", "pusher_stats", "registers_unchanged"))?.[1] ?? 0);
    const before = unchanged();
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPush(token);

    // The same Contact, User-Agent and Expires as the REGISTER the plugin already applied: cfg's shortcut.
    const answered = await registerAndAnswer(pusher, phone, pushParams(token), callId);
    expect(answered.code, answered.output).toBe(0);
    expect((await caller).code).toBe(0);
    expect(unchanged()).toBe(before + 1);
  });

  it("answers 480 close to t2 when the phone never wakes (its TCP connection closed: pushed at once)", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token)); // sipp exits: the phone closed its connection
    const caller = await call(pusher, phone, "call-unavailable.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(1);
    expect(apns.requestsFor(token)[0].receivedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.inviteFirstMs);
    const elapsed = caller.endedAtMs - caller.startedAtMs;
    expect(elapsed).toBeGreaterThanOrEqual(TIMERS.pushWaitMs - 200);
    expect(elapsed).toBeLessThan(TIMERS.pushWaitMs + 3000);
  });

  it("answers the caller at once when APNs says the token is unregistered, and forgets the device", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(APP_ID);
    apns.replyFor(token, { status: 410, reason: "Unregistered" });
    await registerPhone(pusher, phone, pushParams(token));
    expect(devicesTable()).toContain(phone.aor);
    const caller = await call(pusher, phone, "call-unavailable.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs / 2);
    expect(devicesTable()).not.toContain(phone.aor);
    await pusher.waitFor(new RegExp(`device removed aor=${phone.aor} .*token is dead`), 3000);
  });

  it("keeps the device when APNs says 410 for a token the phone registered after the 410's timestamp", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(APP_ID);
    // Apple's 410 onset is delayed: it can name a time before the phone's last REGISTER of that same token.
    apns.replyFor(token, { status: 410, reason: "Unregistered", timestamp: Date.now() - 3_600_000 });
    await registerPhone(pusher, phone, pushParams(token));
    const caller = await call(pusher, phone, "call-unavailable.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs / 2); // the push failed: no wait
    expect(devicesTable()).toContain(phone.aor);
    await pusher.waitFor(new RegExp(`device kept aor=${phone.aor} .*registered again after that`), 3000);
  });

  it("keeps the device when its phone registered a new token before APNs answered that the pushed one is dead", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const [oldToken, newToken] = [apns.newDevice(APP_ID), apns.newDevice(APP_ID)];
    // A slow APNs: its 410 for the pushed token comes after the phone's next REGISTER (with a new token).
    apns.replyFor(oldToken, { status: 410, reason: "Unregistered", afterMs: 3000 });
    const instance = "00000000-0000-0000-0000-0000000000f7";
    await registerPhone(pusher, phone, pushParams(oldToken, instance));
    const callId = sharedCallId(phone);
    const caller = await call(pusher, phone, "call-cancelled.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    await registerPhone(pusher, await phone.newSocket(), pushParams(newToken, instance));
    expect(apns.requestsFor(oldToken).map((push) => push.status)).toEqual([null]); // not answered yet
    await pusher.waitFor(new RegExp(`push failed call-id=${callId} aor=${phone.aor} `), 5000);
    expect(apns.requestsFor(oldToken).map((push) => push.status)).toEqual([410]);
    expect(Object.values(devicesOf(phone.aor)).map((device) => device.token)).toEqual([newToken]);
    await new Promise((done) => setTimeout(done, 300)); // Kamailio's log trails its htable
    expect(pusher.output()).not.toMatch(new RegExp(`device removed aor=${phone.aor} `));
  });

  it("stores nothing for a User-Agent no rule matches, and the REGISTER still gets 200", async () => {
    const phone = await Phone.create();
    await registerPhone(pusher, phone, pushParams(apns.newDevice(APP_ID)), { userAgent: "SomeDesktopPhone 2.0" });
    expect(pusher.rpc("ul.dump")).toContain(phone.aor);
    expect(devicesTable()).not.toContain(phone.aor);
  });

  it("stores the record from the seed's sample Contact header as is (Contact user unlike the AOR's, TCP, behind NAT), and pushes, wakes and rings that phone", async () => {
    // The seed's sample, its private address replaced by the test NAT's: `sip:user_1234567@<private>` registered
    // as another user of the domain. The token is the seed's, space included (the mock knows it as a device).
    const phone = await Phone.create({ transport: "tcp", nat: true });
    const token = apns.addDevice("34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw", {
      bundle: APP_ID,
      kind: "voip",
    });
    const contact =
      `<sip:user_1234567@${NAT_PRIVATE_ADDRESS};transport=TCP;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00004e05965e>";` +
      `app-id=${APP_ID};pn-tok=${token};pn-type=apple`;
    await registerPhone(pusher, phone, "", { keys: { contact } }); // the REGISTER's connection closes: asleep
    const table = devicesTable();
    expect(table).toContain(phone.aor);
    expect(table).toContain("urn:uuid:00000000-0000-0000-0000-00004e05965e");
    expect(table).toContain(token);
    expect(devicesOf(phone.aor)).toEqual({
      "urn:uuid:00000000-0000-0000-0000-00004e05965e": expect.objectContaining({
        aor: phone.aor,
        instance: "urn:uuid:00000000-0000-0000-0000-00004e05965e",
        appId: APP_ID,
        provider: "apple",
        token,
        userAgent: USER_AGENT,
        // Where the phone reaches this proxy: the socket its REGISTER came in on.
        proxy: `sip:127.0.0.1:${pusher.sipPort};transport=tcp`,
        registeredAtMs: expect.any(Number),
      }),
    });
    const stored = await pusher.waitFor(new RegExp(`device stored aor=${phone.aor} [^\n]*`));
    expect(stored).toBe(
      `device stored aor=${phone.aor} instance=urn:uuid:00000000-0000-0000-0000-00004e05965e app=${APP_ID} provider=apple token=34fret…vtrw`,
    );
    expect(pusher.rpc("ul.lookup", "location", phone.aor)).toContain(`user_1234567@${NAT_PRIVATE_ADDRESS}`);

    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPush(token);
    expect(apns.requestsFor(token)[0].status).toBe(200);
    const answered = await registerAndAnswer(pusher, await phone.newSocket(), "", callId, { keys: { contact } });
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
  });

  it("answers a CANCEL during the hold with 200 and 487, tells the pushed phone at its alert token, and a later REGISTER does not ring the phone", async () => {
    // Linphone's two-token binding (RFC 8599 params in the Contact URI, as Linphone sends them): the call goes as
    // VoIP to the PushKit token, the missed-call notice as an alert to the alert token. TCP, connection closed.
    const phone = await Phone.create({ transport: "tcp" });
    const [alertToken, voipToken] = [apns.newDevice(APP_ID, "alert"), apns.newDevice(APP_ID, "voip")];
    const uriParams = `;pn-provider=apns;pn-prid=${alertToken}:remote&${voipToken}:voip;pn-param=${TEAM_ID}.${APP_ID}.remote&voip`;
    await registerPhone(pusher, phone, "", { uriParams });
    const caller = await call(pusher, phone, "call-cancelled.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs);
    // The call push, then the push telling the phone the call is over (sent after the 487: wait for it).
    await waitForPushes(apns, alertToken, 1, 5000, pusher);
    await new Promise((done) => setTimeout(done, 200)); // and no other one
    const [callPush] = apns.requestsFor(voipToken);
    const [endedPush] = apns.requestsFor(alertToken);
    expect(apns.requestsFor(voipToken)).toHaveLength(1);
    expect(apns.requestsFor(alertToken)).toHaveLength(1);
    expect(callPush.headers["apns-push-type"]).toBe("voip");
    expect((endedPush.body as Record<string, any>)["call-id"]).toBe((callPush.body as Record<string, any>)["call-id"]);
    expect(endedPush.headers["apns-push-type"]).toBe("alert"); // an alert token gets an alert push
    expect(endedPush.headers["apns-topic"]).toBe(APP_ID);
    expect(endedPush.status).toBe(200);
    expect((endedPush.body as Record<string, any>).event).toBe("call-cancelled");
    expect(callState(pusher.rpc)).not.toContain(phone.aor);
    await registerPhone(pusher, await phone.newSocket(), "", { uriParams });
    await new Promise((done) => setTimeout(done, 500)); // Kamailio's log trails the REGISTER's 200
    expect(pusher.output()).not.toMatch(new RegExp(`delivering call-id=\\S+ aor=${phone.aor}`));
    expect(devicesTable()).toContain(voipToken);
  });
});

describe("Kamailio after every call of this file", () => {
  it("logged the helper's hello, no plugin error, holds no htable lock and keeps no call in pusher_calls", async () => {
    expect(pusher.output()).toMatch(/pusher: helper connected \(pid \d+, protocol 1\)/);
    dumpEveryPusherTable(pusher.rpc);
    await waitUntil(() => callItems(pusher.rpc).length === 0, 5000, "no call left in pusher_calls");
    expect(pluginErrorsIn(pusher.output())).toEqual([]);
  });
});
