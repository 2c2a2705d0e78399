// Call strategies other than invite-first, and Kazoo drop-in mode (X-KAZOO-PUSHER-* headers), end to end.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSipp } from "../support/sipp";
import {
  APP_ID,
  WakeFixture,
  callKeys,
  dropBindings,
  listeningPhone,
  pushParams,
  registerPhone,
  startWakeFixture,
  uniqueUser,
  waitForPushes,
} from "../support/wake-fixture";

function tokenFor(prefix: string, user: string): string {
  return (prefix + user).replace(/[^a-z0-9]/gi, "");
}

function kazooCallKeys(user: string, token: string, pushTimeoutMs: number): Record<string, string> {
  return { ...callKeys(user), token, app: APP_ID, account_ref: "acct-42", push_timeout: String(pushTimeoutMs) };
}

describe("the parallel strategy", () => {
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({ calls: { strategy: "parallel" }, timers: { pushWaitMs: 5000, afterWakeMs: 5000 } });
  }, 30000);
  afterAll(async () => fixture?.stop());

  it("sends the INVITE to the registered phone and the push at the same time; the phone that answers gets no end-of-call push", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const token = tokenFor("p1", user);
    const phone = await listeningPhone(pusher, "answer-late.xml");
    await registerPhone(pusher, user, pushParams(token, "00000000-0000-0000-0000-000000000001"), { contactPort: phone.port });
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    await waitForPushes(apns, token, 1, 8000, pusher); // pushed although registered, while the phone rings (it answers after 1.5 s)
    expect((await caller).code).toBe(0);
    const answered = await phone.run;
    expect(answered.code, answered.output).toBe(0);
    await new Promise((done) => setTimeout(done, 300));
    expect(apns.requestsFor(token)).toHaveLength(1);
  });
});

describe("the push-first strategy", () => {
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({ calls: { strategy: "push-first", provisional: "110" }, timers: { pushWaitMs: 5000 } });
  }, 30000);
  afterAll(async () => fixture?.stop());

  it("pushes a registered phone and forwards the call only after its REGISTER", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const token = tokenFor("f1", user);
    const phone = await listeningPhone(pusher, "answer.xml");
    await registerPhone(pusher, user, pushParams(token), { contactPort: phone.port });
    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    await waitForPushes(apns, token);
    await new Promise((done) => setTimeout(done, 500));
    expect(pusher.output()).not.toMatch(new RegExp(`delivering call-id=\\S+ aor=${user}@`));
    await registerPhone(pusher, user, pushParams(token), { contactPort: phone.port });
    const call = await caller;
    expect(call.code, call.output).toBe(0);
    expect(call.output).toMatch(/110 <-+\s+1\s/); // calls.provisional "110 Push sent" reached the caller
    expect((await phone.run).code).toBe(0);
  });
});

describe("Kazoo drop-in mode", () => {
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({ timers: { pushWaitMs: 8000 } });
  }, 30000);
  afterAll(async () => fixture?.stop());

  it("pushes the token named by X-KAZOO-PUSHER-* headers with Kazoo's body, and the phone never sees them", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const token = tokenFor("k1", user);
    const phone = await listeningPhone(pusher, "answer.xml");
    const startedAt = Date.now();
    const caller = runSipp({ scenario: "call-kazoo.xml", remotePort: pusher.sipPort, keys: kazooCallKeys(user, token, 3000) });
    await waitForPushes(apns, token);
    const body = apns.requestsFor(token)[0].body as Record<string, unknown>;
    expect(body.proxy).toBe("sip:proxy.example.net:7000;transport=udp");
    expect(body["account-ref"]).toBe("acct-42");
    expect(apns.requestsFor(token)[0].headers["apns-topic"]).toBe(`${APP_ID}.voip`);
    await registerPhone(pusher, user, "", { contactPort: phone.port }); // the woken app registers (no push params needed)
    const call = await caller;
    expect(call.code, call.output).toBe(0);
    const answered = await phone.run;
    expect(answered.code, answered.output).toBe(0); // its INVITE carried no X-KAZOO header
    expect(Date.now() - startedAt).toBeLessThan(8000);
  });

  it("obeys X-KAZOO-PUSHER-Push-Timeout: the caller gets 480 at that time, not at t2", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const token = tokenFor("k2", user);
    const keys = kazooCallKeys(user, token, 1500);
    const caller = await runSipp({ scenario: "call-kazoo-unavailable.xml", remotePort: pusher.sipPort, keys });
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(1);
    expect(caller.endedAtMs - caller.startedAtMs).toBeGreaterThanOrEqual(1300);
    expect(caller.endedAtMs - caller.startedAtMs).toBeLessThan(5000);
  });

  it("ignores X-KAZOO-PUSHER-* headers from a source that is not trusted", async () => {
    const untrusted = await startWakeFixture({ kazoo: { trustedSources: ["192.0.2.1/32"] } });
    try {
      const user = uniqueUser();
      const token = tokenFor("k3", user);
      const caller = await runSipp({ scenario: "call-kazoo.xml", remotePort: untrusted.pusher.sipPort, keys: kazooCallKeys(user, token, 3000), timeoutSeconds: 10 });
      expect(caller.output).toMatch(/404 Not Found/); // handled as a plain call to an unknown user
      expect(untrusted.apns.requestsFor(token)).toHaveLength(0);
    } finally {
      await untrusted.stop();
    }
  });
});

describe("an unregistered callee with two phones under invite-first", () => {
  let fixture: WakeFixture;
  beforeAll(async () => {
    fixture = await startWakeFixture({ timers: { pushWaitMs: 5000 } });
  }, 30000);
  afterAll(async () => fixture?.stop());

  it("pushes every device once per call", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const tokens = [tokenFor("m1", user), tokenFor("m2", user)];
    await registerPhone(pusher, user, pushParams(tokens[0], "00000000-0000-0000-0000-000000000001"));
    await registerPhone(pusher, user, pushParams(tokens[1], "00000000-0000-0000-0000-000000000002"));
    dropBindings(pusher, user);
    const caller = await runSipp({ scenario: "call-unavailable.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    expect(caller.code).toBe(0);
    for (const token of tokens) {
      const callPushes = apns.requestsFor(token).filter((request) => request.headers["apns-push-type"] === "voip");
      expect(callPushes).toHaveLength(1);
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
    const user = uniqueUser();
    const token = tokenFor("q1", user);
    await registerPhone(pusher, user, pushParams(token), { userAgent: "QuickApp 2.1" }); // registered, nothing listens
    const caller = await runSipp({ scenario: "call-unavailable.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    expect(caller.code, caller.output).toBe(0);
    expect(apns.requestsFor(token)).toHaveLength(1);
    const elapsed = caller.endedAtMs - caller.startedAtMs;
    expect(elapsed).toBeGreaterThanOrEqual(1300); // the rule's t2, not the global 8 s, and no invite-first wait
    expect(elapsed).toBeLessThan(5000);
  });
});
