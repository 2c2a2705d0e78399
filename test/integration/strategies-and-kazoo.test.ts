// Call strategies other than invite-first, and Kazoo drop-in mode (X-KAZOO-PUSHER-* headers), end to end, with
// the phones of the test topology (test/support/topology.ts): named domains, own addresses, NAT, TCP.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSipp, SippRun } from "../support/sipp";
import { nextAddress, Phone, silentSocket } from "../support/topology";
import {
  APP_ID,
  WakeFixture,
  call,
  callKeys,
  listeningPhone,
  pushParams,
  registerAndAnswer,
  registerPhone,
  sharedCallId,
  startWakeFixture,
  waitForPushes,
} from "../support/wake-fixture";

/** Team id of the RFC 8599 (Linphone) bindings of APP_ID. */
const TEAM_ID = "ABCDE12345";

function kazooCallKeys(phone: Phone, token: string, pushTimeoutMs: number): Record<string, string> {
  return { ...callKeys(phone), token, app: APP_ID, account_ref: "acct-42", push_timeout: String(pushTimeoutMs) };
}

describe("the parallel strategy", () => {
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({
      calls: { strategy: "parallel" },
      timers: { pushWaitMs: 5000, afterWakeMs: 5000 },
    });
  }, 30000);
  afterAll(async () => fixture?.stop());

  it("sends the INVITE to the registered phone (behind NAT) and the push at the same time; the phone that answers gets no end-of-call push", async () => {
    const { pusher, apns } = fixture;
    // Linphone's two-token binding: it could take a call-ended alert, so its absence means something.
    const phone = await Phone.create({ nat: true });
    const [alertToken, voipToken] = [apns.newDevice(APP_ID, "alert"), apns.newDevice(APP_ID, "voip")];
    const uriParams = `;pn-provider=apns;pn-prid=${alertToken}:remote&${voipToken}:voip;pn-param=${TEAM_ID}.${APP_ID}.remote&voip`;
    const params = `;+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>"`;
    const callId = sharedCallId(phone);
    const answering = registerAndAnswer(pusher, phone, params, callId, {
      uriParams,
      scenario: "register-and-answer-late.xml",
    });
    await pusher.waitFor(new RegExp(`device stored aor=${phone.aor} `));
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPushes(apns, voipToken, 1, 8000, pusher); // pushed although registered, while the phone rings (it answers after 1.5 s)
    const answered = await answering;
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    await new Promise((done) => setTimeout(done, 300));
    expect(apns.requestsFor(voipToken)).toHaveLength(1);
    expect(apns.requestsFor(alertToken)).toHaveLength(0);
  });
});

describe("the push-first strategy", () => {
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({
      calls: { strategy: "push-first", provisional: "110" },
      timers: { pushWaitMs: 5000 },
    });
  }, 30000);
  afterAll(async () => fixture?.stop());

  it("pushes a registered phone (on TCP) and forwards the call only after its REGISTER", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    const callId = sharedCallId(phone);
    const caller = call(pusher, phone, "call-answered.xml", { callId });
    await waitForPushes(apns, token, 1, 8000, pusher);
    await new Promise((done) => setTimeout(done, 500));
    expect(pusher.output()).not.toMatch(new RegExp(`delivering call-id=\\S+ aor=${phone.aor}`));
    const answered = await registerAndAnswer(pusher, await phone.newSocket(), pushParams(token), callId);
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/110 <-+\s+1\s/); // calls.provisional "110 Push sent" reached the caller
    expect(pusher.output()).toMatch(new RegExp(`delivering call-id=${callId} aor=${phone.aor}`));
  });
});

describe("Kazoo drop-in mode", () => {
  // Kazoo's FreeSWITCH on its own address, the one source trusted with X-KAZOO-PUSHER-* headers.
  const freeswitch = nextAddress();
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({ kazoo: { trustedSources: [`${freeswitch}/32`] }, timers: { pushWaitMs: 8000 } });
  }, 30000);
  afterAll(async () => fixture?.stop());

  /** FreeSWITCH calls `phone`'s AOR with the X-KAZOO-PUSHER-* headers of `token`. */
  function kazooCall(scenario: string, phone: Phone, token: string, pushTimeoutMs: number): Promise<SippRun> {
    return runSipp({
      scenario,
      remotePort: fixture.pusher.sipPort,
      localIp: freeswitch,
      keys: kazooCallKeys(phone, token, pushTimeoutMs),
    });
  }

  it("pushes the token named by X-KAZOO-PUSHER-* headers with Kazoo's body, and the phone never sees them", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    const startedAt = Date.now();
    const caller = kazooCall("call-kazoo.xml", phone, token, 3000);
    await waitForPushes(apns, token, 1, 8000, pusher);
    const [push] = apns.requestsFor(token);
    const body = push.body as Record<string, unknown>;
    expect(body.proxy).toBe("sip:proxy.example.net:7000;transport=udp");
    expect(body["account-ref"]).toBe("acct-42");
    expect(push.headers["apns-topic"]).toBe(`${APP_ID}.voip`);
    expect(push.status).toBe(200);
    expect(pusher.output()).toMatch(new RegExp(`push requested call-id=\\S+ aor=${phone.aor} `));
    // The woken app listens on its port and registers (no push params needed); answer.xml fails on an X-KAZOO header.
    const answering = await listeningPhone(pusher, phone, "answer.xml");
    await registerPhone(pusher, phone, "");
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    const answered = await answering.run;
    expect(answered.code, answered.output).toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(8000);
  });

  it("obeys X-KAZOO-PUSHER-Push-Timeout: the caller gets 480 at that time, not at t2", async () => {
    const { apns } = fixture;
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    const caller = await kazooCall("call-kazoo-unavailable.xml", phone, token, 1500);
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(1);
    expect(caller.endedAtMs - caller.startedAtMs).toBeGreaterThanOrEqual(1300);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(5000);
  });

  it("ignores X-KAZOO-PUSHER-* headers from a source that is not trusted (a caller on another address)", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    const caller = await call(pusher, phone, "call-kazoo.xml", {
      keys: kazooCallKeys(phone, token, 3000),
      timeoutSeconds: 10,
    });
    expect(caller.output).toMatch(/404 Not Found/); // handled as a plain call to an unknown user
    expect(apns.requestsFor(token)).toHaveLength(0);
  });
});

describe("an unregistered callee with two phones under invite-first", () => {
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({ timers: { inviteFirstMs: 1000, pushWaitMs: 3000 } });
  }, 30000);
  afterAll(async () => fixture?.stop());

  it("pushes every device once per call (one asleep behind NAT, one whose TCP connection is closed)", async () => {
    const { pusher, apns } = fixture;
    const natPhone = await Phone.create({ nat: true });
    const tcpPhone = await Phone.create({ user: natPhone.user, transport: "tcp" });
    const tokens = [apns.newDevice(APP_ID), apns.newDevice(APP_ID)];
    await registerPhone(pusher, natPhone, pushParams(tokens[0], "00000000-0000-0000-0000-000000000001"));
    await registerPhone(pusher, tcpPhone, pushParams(tokens[1], "00000000-0000-0000-0000-000000000002"));
    const caller = await call(pusher, natPhone, "call-unavailable.xml");
    expect(caller.code, caller.output).toBe(0);
    for (const token of tokens) {
      const callPushes = apns.requestsFor(token).filter((request) => request.headers["apns-push-type"] === "voip");
      expect(callPushes).toHaveLength(1);
      expect(callPushes[0].status).toBe(200);
    }
  });
});

describe("a User-Agent rule with its own strategy and timers", () => {
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({
      timers: { pushWaitMs: 8000 },
      userAgents: [
        { name: "QuickApp", regex: "^QuickApp", strategy: "push-first", timers: { pushWaitMs: 1500 } },
        { name: "MyMobileApp", regex: "^MyMobileApp" },
      ],
    });
  }, 30000);
  afterAll(async () => fixture?.stop());

  it("pushes a registered phone of that rule at once and ends the call at the rule's t2", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token), { userAgent: "QuickApp 2.1" });
    const binding = await silentSocket(phone); // registered, asleep behind its NAT binding
    try {
      const caller = await call(pusher, phone, "call-unavailable.xml");
      expect(caller.code, caller.output).toBe(0);
      expect(apns.requestsFor(token)).toHaveLength(1);
      expect(binding.received()).toBe(0); // push-first: no INVITE tried the phone first
      const elapsed = caller.endedAtMs - caller.startedAtMs;
      expect(elapsed).toBeGreaterThanOrEqual(1300); // the rule's t2, not the global 8 s, and no invite-first wait
      expect(elapsed).toBeLessThan(5000);
    } finally {
      await binding.close();
    }
  });
});
