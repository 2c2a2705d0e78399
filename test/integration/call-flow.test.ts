// Calls with several phones and several callers, end to end through real Kamailio, sipp and the helper.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/free-port";
import { phoneKeys, runSipp } from "../support/sipp";
import {
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

let fixture: WakeFixture;

beforeAll(async () => {
  fixture = await startWakeFixture({ timers: { inviteFirstMs: 1000, pushWaitMs: 6000, afterWakeMs: 6000 } });
}, 30000);

afterAll(async () => {
  await fixture?.stop();
});

function incomingCalls(output: string): number {
  const match = /Incoming calls created\s*\|\s*\d+\s*\|\s*(\d+)/.exec(output);
  return match ? Number(match[1]) : -1;
}

describe("a callee with several phones", () => {
  it("pushes both phones, forks to each as it registers, and cancels the other with Reason cause=200 when one answers", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const [tokenA, tokenB] = [`a1${user}`, `b1${user}`].map((t) => t.replace(/[^a-z0-9]/gi, ""));
    const phoneA = await listeningPhone(pusher, "answer-late.xml");
    const phoneB = await listeningPhone(pusher, "ring-until-cancelled.xml");
    const paramsA = pushParams(tokenA, "00000000-0000-0000-0000-00000000000a");
    const paramsB = pushParams(tokenB, "00000000-0000-0000-0000-00000000000b");
    await registerPhone(pusher, user, paramsA, { contactPort: phoneA.port });
    await registerPhone(pusher, user, paramsB, { contactPort: phoneB.port });
    dropBindings(pusher, user);

    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    await waitForPushes(apns, tokenA);
    await waitForPushes(apns, tokenB);
    await registerPhone(pusher, user, paramsA, { contactPort: phoneA.port }); // A wakes: gets the call, rings 1.5 s
    await new Promise((done) => setTimeout(done, 300));
    await registerPhone(pusher, user, paramsB, { contactPort: phoneB.port }); // B wakes while A rings: forked

    const [call, a, b] = await Promise.all([caller, phoneA.run, phoneB.run]);
    expect(call.code, call.output).toBe(0);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output).toBe(0); // its CANCEL carried Reason: SIP;cause=200
    expect(pusher.output()).toMatch(new RegExp(`forking call-id=\\S+ aor=${user}@127.0.0.1 to it`));
  });

  it("tells a pushed phone that never woke that the call was answered elsewhere", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const [tokenA, tokenB] = [`a2${user}`, `b2${user}`].map((t) => t.replace(/[^a-z0-9]/gi, ""));
    const phoneA = await listeningPhone(pusher, "answer.xml");
    const paramsA = pushParams(tokenA, "00000000-0000-0000-0000-0000000000aa");
    await registerPhone(pusher, user, paramsA, { contactPort: phoneA.port });
    await registerPhone(pusher, user, pushParams(tokenB, "00000000-0000-0000-0000-0000000000bb"));
    dropBindings(pusher, user);

    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    await waitForPushes(apns, tokenA);
    await waitForPushes(apns, tokenB);
    await registerPhone(pusher, user, paramsA, { contactPort: phoneA.port });
    expect((await caller).code).toBe(0);
    expect((await phoneA.run).code).toBe(0);

    await waitForPushes(apns, tokenB, 2);
    const [callPush, endedPush] = apns.requestsFor(tokenB);
    expect((endedPush.body as Record<string, unknown>)["call-id"]).toBe((callPush.body as Record<string, unknown>)["call-id"]);
    expect(endedPush.headers["apns-push-type"]).toBe("alert");
    expect((endedPush.body as Record<string, unknown>).event).toBe("answered-elsewhere");
    expect(apns.requestsFor(tokenA)).toHaveLength(1); // the phone that answered is not told anything
  });
});

describe("a callee with several callers", () => {
  it("delivers every call waiting for the phone when it registers", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const token = `c3${user}`.replace(/[^a-z0-9]/gi, "");
    const phone = await listeningPhone(pusher, "answer.xml", 2);
    await registerPhone(pusher, user, pushParams(token), { contactPort: phone.port });
    dropBindings(pusher, user);

    const callers = [1, 2].map(() => runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user) }));
    await waitForPushes(apns, token, 2);
    await registerPhone(pusher, user, pushParams(token), { contactPort: phone.port });

    for (const caller of await Promise.all(callers)) expect(caller.code, caller.output).toBe(0);
    const answered = await phone.run;
    expect(answered.code, answered.output).toBe(0);
    expect(incomingCalls(answered.output)).toBe(2);
  });

  it("gives a phone that registers twice during one call one INVITE, not two", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const token = `d4${user}`.replace(/[^a-z0-9]/gi, "");
    const phone = await listeningPhone(pusher, "answer-late.xml", 1);
    await registerPhone(pusher, user, pushParams(token), { contactPort: phone.port });
    dropBindings(pusher, user);

    const caller = runSipp({ scenario: "call-answered.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    await waitForPushes(apns, token);
    await registerPhone(pusher, user, pushParams(token), { contactPort: phone.port });
    await registerPhone(pusher, user, pushParams(token), { contactPort: phone.port }); // while it rings

    expect((await caller).code).toBe(0);
    const answered = await phone.run;
    expect(answered.code, answered.output).toBe(0);
    expect(incomingCalls(answered.output)).toBe(1);
  });
});

describe("a pushed phone whose REGISTER fails", () => {
  it("ends its held call with 480 at once, not at t2 (RFC 8599 §5.6.2)", async () => {
    const { pusher, apns } = fixture;
    const user = uniqueUser();
    const token = `e5${user}`.replace(/[^a-z0-9]/gi, "");
    await registerPhone(pusher, user, pushParams(token));
    dropBindings(pusher, user);
    const caller = runSipp({ scenario: "call-unavailable.xml", remotePort: pusher.sipPort, keys: callKeys(user) });
    await waitForPushes(apns, token);
    const startedAt = Date.now();
    // q=5 is out of range: the registrar refuses the REGISTER with 400.
    const port = await freePort();
    const failed = await runSipp({
      scenario: "register.xml",
      remotePort: pusher.sipPort,
      localPort: port,
      keys: phoneKeys(user, port, `;q=5${pushParams(token)}`, "MyMobileApp iOS 1.0"),
    });
    expect(failed.code).not.toBe(0);
    const call = await caller;
    expect(call.code, call.output).toBe(0);
    expect(call.endedAtMs - startedAt).toBeLessThan(3000); // t2 is 6 s in this file
  });
});
