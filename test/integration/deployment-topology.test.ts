// Calls in the shape of a deployment (test/support/topology.ts): users on a named domain, each phone on its own
// loopback address with a Contact user unlike its AOR user, phones asleep the ways phones really sleep (an expired
// NAT binding that swallows datagrams, a closed UDP port, a TCP connection the phone closed), phones behind NAT,
// and callers that follow the route set for every in-dialog request. Default strategy (invite-first).
import net from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MockApns } from "../support/mock-apns";
import { PusherProcess } from "../support/pusher-process";
import { DOMAIN, NAT_PRIVATE_ADDRESS, Phone, SECOND_DOMAIN, silentSocket } from "../support/topology";
import {
  APP_ID,
  WakeFixture,
  call,
  pushParams,
  registerAndAnswer,
  registerPhone,
  sharedCallId,
  startWakeFixture,
  waitForPushes,
} from "../support/wake-fixture";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 6000, afterWakeMs: 6000 };

let fixture: WakeFixture;
let apns: MockApns;
let pusher: PusherProcess;

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

function waitForPush(token: string): Promise<void> {
  return waitForPushes(apns, token, 1, 8000, pusher);
}

/** The INVITE's time and the first push's, from the mock's log and the caller's start. */
function pushDelayMs(token: string, callStartedAtMs: number): number {
  return apns.requestsFor(token)[0].receivedAtMs - callStartedAtMs;
}

describe("a phone asleep on its own address, called at its AOR on a named domain", () => {
  it("is pushed after t1 when its NAT binding swallows the INVITE, and gets the call when it registers from a new port", async () => {
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    const binding = await silentSocket(phone); // the NAT still maps the port, nothing answers behind it
    const callId = sharedCallId(phone);
    const startedAt = Date.now();
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPush(token);
    expect(binding.received()).toBeGreaterThan(0); // invite-first tried the phone first
    expect(pushDelayMs(token, startedAt)).toBeGreaterThanOrEqual(TIMERS.inviteFirstMs - 100); // for t1 (timers.inviteFirstMs)
    await binding.close();
    // Kamailio's log comes through a pipe and may trail the mock's record of the push.
    await pusher.waitFor(new RegExp(`push requested call-id=\\S+ aor=${phone.aor} `), 3000);

    const woken = await phone.newSocket();
    const answered = await registerAndAnswer(pusher, woken, pushParams(token), callId);
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(1);
  });

  it("is pushed when its UDP port is closed, and its Contact user differs from its AOR user", async () => {
    const phone = await Phone.create();
    expect(phone.contactUser).not.toBe(phone.user);
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token)); // nothing listens at the Contact's port
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPush(token);
    const answered = await registerAndAnswer(pusher, await phone.newSocket(), pushParams(token), callId);
    expect(answered.code, answered.output).toBe(0);
    expect((await caller).code).toBe(0);
  });

  it("is pushed at once, not after t1, when it registered over TCP and closed the connection, and gets the call on its new connection", async () => {
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token)); // sipp exits: the phone closed its connection
    // Its Contact's port takes connections (a NAT or a firewall may well answer there): the proxy must not open
    // one towards a phone (forward-no-connect), or it would send the INVITE into a socket nobody reads.
    const connections: net.Socket[] = [];
    const contactPort = net.createServer((socket) => connections.push(socket));
    await new Promise<void>((resolve) => contactPort.listen(phone.port, phone.address, resolve));
    const callId = sharedCallId(phone);
    const startedAt = Date.now();
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPush(token);
    expect(pushDelayMs(token, startedAt)).toBeLessThan(TIMERS.inviteFirstMs);
    expect(connections).toHaveLength(0);
    for (const socket of connections) socket.destroy();
    await new Promise((done) => contactPort.close(done));

    const answered = await registerAndAnswer(pusher, await phone.newSocket(), pushParams(token), callId);
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(result.output).not.toMatch(/500 Server Error/);
  });
});

describe("a phone behind NAT (Contact and Via name an address it does not send from)", () => {
  it("is reached at its received address, awake: ACK and re-INVITE reach it, its BYE reaches the caller", async () => {
    const phone = await Phone.create({ nat: true });
    const token = apns.newDevice(APP_ID);
    const callId = sharedCallId(phone);
    const answered = registerAndAnswer(pusher, phone, pushParams(token), callId, {
      scenario: "register-answer-reinvite-hangup.xml",
    });
    await pusher.waitFor(new RegExp(`device stored aor=${phone.aor} `));
    const contacts = pusher.rpc("ul.lookup", "location", phone.aor);
    expect(contacts).toContain(NAT_PRIVATE_ADDRESS);
    expect(contacts).toContain(`${phone.address}:${phone.port}`); // the received address
    const caller = await call(pusher, phone, "call-reinvite-hangup.xml", { callId });
    expect(caller.code, caller.output).toBe(0);
    const phoneRun = await answered;
    expect(phoneRun.code, phoneRun.output).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(0);
  });

  it("is woken by a push and answers on its new NAT mapping; the whole dialog reaches it there", async () => {
    const phone = await Phone.create({ nat: true });
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token)); // its mapping (the REGISTER's source port) expires
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-reinvite-hangup.xml", { callId });
    await waitForPush(token);
    const answered = await registerAndAnswer(pusher, await phone.newSocket(), pushParams(token), callId, {
      scenario: "register-answer-reinvite-hangup.xml",
    });
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
  });
});

describe("push params in the phone's Contact URI", () => {
  it("never reach the phone: neither in the INVITE to an awake phone nor in the held call delivered after the push", async () => {
    // Kazoo's params inside the URI (Kazoo reads both places); the phone scenarios fail on a pn-/app-id param in
    // the R-URI they receive.
    const awake = await Phone.create();
    const awakeToken = apns.newDevice(APP_ID);
    const awakeParams = `;app-id=${APP_ID};pn-tok=${awakeToken};pn-type=apple`;
    const awakeCall = sharedCallId(awake);
    const awakeRun = registerAndAnswer(pusher, awake, "", awakeCall, { uriParams: awakeParams });
    await pusher.waitFor(new RegExp(`device stored aor=${awake.aor} `));
    expect((await call(pusher, awake, "call-answered.xml", { callId: awakeCall })).code).toBe(0);
    const awakeResult = await awakeRun;
    expect(awakeResult.code, awakeResult.output).toBe(0);

    const asleep = await Phone.create();
    const token = apns.newDevice(APP_ID);
    const params = `;app-id=${APP_ID};pn-tok=${token};pn-type=apple;x-token-reg=abc`;
    await registerPhone(pusher, asleep, "", { uriParams: params });
    const callId = sharedCallId(asleep);
    const caller = call(pusher, asleep, "call-answered.xml", { callId });
    await waitForPush(token);
    const answered = await registerAndAnswer(pusher, await asleep.newSocket(), "", callId, { uriParams: params });
    expect(answered.code, answered.output).toBe(0);
    expect((await caller).code).toBe(0);
  });

  it("never reach the phone in requests other than calls (a MESSAGE relayed to it after lookup)", async () => {
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    const callId = sharedCallId(phone);
    const receiving = registerAndAnswer(pusher, phone, "", callId, {
      scenario: "register-and-receive-message.xml",
      uriParams: `;pn-provider=apns;pn-prid=${token};pn-param=ABCDE12345.${APP_ID}.voip`,
    });
    await pusher.waitFor(new RegExp(`device stored aor=${phone.aor} `));
    const sent = await call(pusher, phone, "send-message.xml", { callId });
    expect(sent.code, sent.output).toBe(0);
    const received = await receiving;
    expect(received.code, received.output).toBe(0);
  });
});

describe("one user name on two domains", () => {
  it("are two AORs: a call to one pushes only that one's phone", async () => {
    const here = await Phone.create({ domain: DOMAIN });
    const there = await Phone.create({ user: here.user, domain: SECOND_DOMAIN });
    const [hereToken, thereToken] = [apns.newDevice(APP_ID), apns.newDevice(APP_ID)];
    await registerPhone(pusher, here, pushParams(hereToken));
    await registerPhone(pusher, there, pushParams(thereToken));
    const caller = await call(pusher, there, "call-unavailable.xml");
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(thereToken)).toHaveLength(1);
    expect(apns.requestsFor(hereToken)).toHaveLength(0);
    await pusher.waitFor(new RegExp(`push requested call-id=\\S+ aor=${there.aor} `), 3000);
  });
});
