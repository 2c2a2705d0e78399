// The spine, end to end: real Kamailio (started by `pusher start`), real sipp phones and callers, the real
// helper, and a mock APNs on 127.0.0.1 over HTTP/2 + TLS trusted through NODE_EXTRA_CA_CERTS.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MockApns } from "../support/mock-apns";
import { PusherProcess } from "../support/pusher-process";
import { freePort } from "../support/free-port";
import { phoneKeys, runSipp } from "../support/sipp";
import {
  APP_ID,
  USER_AGENT,
  WakeFixture,
  callKeys,
  pushParams,
  registerPhone as registerWith,
  startWakeFixture,
  uniqueUser as nextUser,
  waitForPushes,
} from "../support/wake-fixture";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 4000, afterWakeMs: 5000 };

let fixture: WakeFixture;
let apns: MockApns;
let pusher: PusherProcess;

/** The Call-ID shared by a caller and the phone that answers it (see register-and-answer.xml). */
function sharedCallId(user: string): string {
  return `${user}-call@127.0.0.1`;
}

function registerPhone(user: string, token: string, userAgent = USER_AGENT): Promise<number> {
  return registerWith(pusher, user, pushParams(token), { userAgent });
}

function waitForPush(token: string): Promise<void> {
  return waitForPushes(apns, token, 1, 8000, pusher);
}

function devicesTable(): string {
  return pusher.rpc("htable.dump", "pusher_devices");
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
  it("relays the INVITE to an awake phone and sends no push", async () => {
    const user = nextUser();
    const token = `aa${user.replace(/\D/g, "")}0123456789abcdef`;
    const port = await freePort();
    const phone = runSipp({ scenario: "register-and-answer.xml", remotePort: pusher.sipPort, localPort: port, keys: phoneKeys(user, port, pushParams(token), USER_AGENT), callId: sharedCallId(user) });
    await pusher.waitFor(new RegExp(`device stored aor=${user}@`));
    const caller = await runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user), callId: sharedCallId(user) });
    expect(caller.code, caller.output).toBe(0);
    expect((await phone).code).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(0);
  });

  it("pushes an asleep phone, then hands the call to it when it registers again from a new port", async () => {
    const user = nextUser();
    const token = `bb${user.replace(/\D/g, "")}0123456789abcdef`;
    await registerPhone(user, token); // registered, but nothing listens there any more: asleep
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user), callId: sharedCallId(user) });
    await waitForPush(token);

    const [push] = apns.requestsFor(token);
    expect(push.method).toBe("POST");
    expect(push.path).toBe(`/3/device/${token}`);
    expect(push.headers["apns-topic"]).toBe(`${APP_ID}.voip`);
    expect(push.headers["apns-push-type"]).toBe("voip");
    expect(push.headers["apns-priority"]).toBe("10");
    expect(push.headers["apns-expiration"]).toBe("0");
    const body = push.body as Record<string, any>;
    expect(body.aps.alert["loc-key"]).toBe("IC_SIL");
    expect(body.aps.alert["loc-args"]).toEqual(["15551234567 - Caller Name"]);
    expect(body.aps.sound).toBe("ring.caf");
    expect(typeof body.aps["call-id"]).toBe("string");
    expect(body["call-id"]).toBe(body.aps["call-id"]);
    expect(body["caller-id-number"]).toBe("15551234567");
    expect(body["caller-id-name"]).toBe("Caller Name");
    expect(body.proxy).toBe(`sip:127.0.0.1:${pusher.sipPort};transport=udp`);
    expect(body.utc_unix_timestamp_ms).toMatch(/^\d{13}$/);
    expect(Math.abs(Number(body.utc_unix_timestamp_ms) - push.receivedAtMs)).toBeLessThan(5000);

    const wokenPort = await freePort();
    const phone = await runSipp({ scenario: "register-and-answer.xml", remotePort: pusher.sipPort, localPort: wokenPort, keys: phoneKeys(user, wokenPort, pushParams(token), USER_AGENT), callId: sharedCallId(user) });
    expect(phone.code, phone.output).toBe(0);
    const call = await caller;
    expect(call.code, call.output).toBe(0);
    // The phone that answered is the pushed device (same token, new socket): it gets no "answered elsewhere".
    await new Promise((done) => setTimeout(done, 300));
    expect(apns.requestsFor(token)).toHaveLength(1);
  });

  it("pushes at once, without the invite-first wait, when the phone has a record but no registration", async () => {
    const user = nextUser();
    const token = `cc${user.replace(/\D/g, "")}0123456789abcdef`;
    await registerPhone(user, token);
    pusher.rpc("ul.rm", "location", `${user}@127.0.0.1`); // the binding lapsed; the device record stays
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user), callId: sharedCallId(user) });
    const startedAt = Date.now();
    await waitForPush(token);
    expect(apns.requestsFor(token)[0].receivedAtMs - startedAt).toBeLessThan(TIMERS.inviteFirstMs);

    const port = await freePort();
    const phone = await runSipp({ scenario: "register-and-answer.xml", remotePort: pusher.sipPort, localPort: port, keys: phoneKeys(user, port, pushParams(token), USER_AGENT), callId: sharedCallId(user) });
    expect(phone.code, phone.output).toBe(0);
    expect((await caller).code).toBe(0);
  });

  it("hands the call to a phone that wakes on the socket it registered from (a REGISTER cfg answers without the plugin's JS)", async () => {
    const user = nextUser();
    const token = `dd${user.replace(/\D/g, "")}0123456789abcdef`;
    const port = await registerPhone(user, token);
    pusher.rpc("ul.rm", "location", `${user}@127.0.0.1`); // the binding lapsed; the device record stays
    const unchanged = () => Number(/value:\s*(\d+)/.exec(pusher.rpc("htable.get", "pusher_stats", "registers_unchanged"))?.[1] ?? 0);
    const before = unchanged();
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user), callId: sharedCallId(user) });
    await waitForPush(token);

    const phone = await runSipp({ scenario: "register-and-answer.xml", remotePort: pusher.sipPort, localPort: port, keys: phoneKeys(user, port, pushParams(token), USER_AGENT), callId: sharedCallId(user) });
    expect(phone.code, phone.output).toBe(0);
    expect((await caller).code).toBe(0);
    expect(unchanged()).toBe(before + 1);
  });

  it("answers 480 close to t2 when the phone never registers", async () => {
    const user = nextUser();
    const token = `dd${user.replace(/\D/g, "")}0123456789abcdef`;
    await registerPhone(user, token);
    pusher.rpc("ul.rm", "location", `${user}@127.0.0.1`);
    const caller = await runSipp({ scenario: "call-unavailable.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(1);
    const elapsed = caller.endedAtMs - caller.startedAtMs;
    expect(elapsed).toBeGreaterThanOrEqual(TIMERS.pushWaitMs - 200);
    expect(elapsed).toBeLessThan(TIMERS.pushWaitMs + 3000);
  });

  it("answers the caller at once when APNs says the token is unregistered, and forgets the device", async () => {
    const user = nextUser();
    const token = `ee${user.replace(/\D/g, "")}0123456789abcdef`;
    apns.replyFor(token, { status: 410, reason: "Unregistered" });
    await registerPhone(user, token);
    pusher.rpc("ul.rm", "location", `${user}@127.0.0.1`);
    const caller = await runSipp({ scenario: "call-unavailable.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs / 2);
    expect(devicesTable()).not.toContain(`${user}@127.0.0.1`);
  });

  it("keeps the device when APNs says 410 for a token the phone registered after the 410's timestamp", async () => {
    const user = nextUser();
    const token = `ed${user.replace(/\D/g, "")}0123456789abcdef`;
    // Apple's 410 onset is delayed: it can name a time before the phone's last REGISTER of that same token.
    apns.replyFor(token, { status: 410, reason: "Unregistered", timestamp: Date.now() - 3_600_000 });
    await registerPhone(user, token);
    pusher.rpc("ul.rm", "location", `${user}@127.0.0.1`);
    const caller = await runSipp({ scenario: "call-unavailable.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs / 2); // the push failed: no wait
    expect(devicesTable()).toContain(`${user}@127.0.0.1`);
    expect(pusher.output()).toMatch(new RegExp(`device kept aor=${user}@127\\.0\\.0\\.1 .*registered again after that`));
  });

  it("stores nothing for a User-Agent no rule matches, and the REGISTER still gets 200", async () => {
    const user = nextUser();
    await registerPhone(user, `ff${user.replace(/\D/g, "")}0123456789abcdef`, "SomeDesktopPhone 2.0");
    expect(pusher.rpc("ul.dump")).toContain(`${user}@127.0.0.1`);
    expect(devicesTable()).not.toContain(`${user}@127.0.0.1`);
  });

  it("stores the record from the seed's sample Contact header as is", async () => {
    const token = "34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw";
    const contact =
      "<sip:user_1234567@192.168.1.1:61767;transport=TCP;ob>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-00004e05965e>\";" +
      `app-id=${APP_ID};pn-tok=${token};pn-type=apple`;
    const run = await runSipp({
      scenario: "register.xml",
      remotePort: pusher.sipPort,
      transport: "tcp",
      keys: { user: "user_1234567", domain: "127.0.0.1", contact, user_agent: USER_AGENT, expires: "600" },
    });
    expect(run.code, run.output).toBe(0);
    const table = devicesTable();
    expect(table).toContain("user_1234567@127.0.0.1");
    expect(table).toContain("urn:uuid:00000000-0000-0000-0000-00004e05965e");
    expect(table).toContain(token);
  });

  it("answers a CANCEL during the hold with 200 and 487, and a later REGISTER does not ring the phone", async () => {
    const user = nextUser();
    const token = `ab${user.replace(/\D/g, "")}0123456789abcdef`;
    await registerPhone(user, token);
    pusher.rpc("ul.rm", "location", `${user}@127.0.0.1`);
    const caller = await runSipp({ scenario: "call-cancelled.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    expect(caller.code, caller.output).toBe(0);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(TIMERS.pushWaitMs);
    // The call push, then the push telling the phone the call is over (sent after the 487: wait for it).
    await waitForPushes(apns, token, 2, 5000, pusher);
    await new Promise((done) => setTimeout(done, 200)); // and no third one
    const pushes = apns.requestsFor(token);
    expect(pushes).toHaveLength(2);
    expect((pushes[1].body as Record<string, any>)["call-id"]).toBe((pushes[0].body as Record<string, any>)["call-id"]);
    expect(pushes[1].headers["apns-push-type"]).toBe("alert"); // never VoIP: iOS would demand a new CallKit call
    expect((pushes[1].body as Record<string, any>).event).toBe("call-cancelled");
    expect(pusher.rpc("htable.dump", "pusher_calls")).not.toContain(user);
    await registerPhone(user, token);
    expect(pusher.output()).not.toMatch(new RegExp(`delivering call-id=\\S+ aor=${user}@`));
  });
});
