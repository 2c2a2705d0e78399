// Calls with several phones and several callers, end to end through real Kamailio, sipp and the helper. The phones
// of one AOR are separate devices on their own addresses (test/support/topology.ts), some behind NAT or on TCP,
// asleep until pushed; a woken phone comes back on a new socket.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callItems, dumpEveryPusherTable, pluginErrorsIn } from "../support/kamailio-checks";
import { runSipp } from "../support/sipp";
import { Phone, silentSocket } from "../support/topology";
import {
  APP_ID,
  WakeFixture,
  call,
  listeningPhone,
  pushParams,
  registerAndAnswer,
  registerPhone,
  sharedCallId,
  startWakeFixture,
  waitForPushes,
} from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 6000, afterWakeMs: 6000 };
/** Team id of the RFC 8599 (Linphone) bindings of APP_ID. */
const TEAM_ID = "ABCDE12345";

let fixture: WakeFixture;

beforeAll(async () => {
  fixture = await startWakeFixture({ timers: TIMERS });
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
    // A: behind NAT, Kazoo params after the Contact URI. B: on its own UDP port, Kazoo params inside its Contact
    // URI, so tsilo's late fork to it carries them unless the proxy strips them (ring-until-cancelled.xml checks).
    const phoneA = await Phone.create({ nat: true });
    const phoneB = await Phone.create({ user: phoneA.user });
    const [tokenA, tokenB] = [apns.newDevice(APP_ID), apns.newDevice(APP_ID)];
    const paramsA = pushParams(tokenA, "00000000-0000-0000-0000-00000000000a");
    const instanceB = `;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00000000000b>"`;
    const uriParamsB = `;app-id=${APP_ID};pn-tok=${tokenB};pn-type=apple`;
    await registerPhone(pusher, phoneA, paramsA); // its NAT mapping is gone right after: asleep
    await registerPhone(pusher, phoneB, instanceB, { uriParams: uriParamsB }); // nothing listens at its port: asleep

    const callId = sharedCallId(phoneA);
    const caller = call(pusher, phoneA, "call-answered.xml", { callId });
    await waitForPushes(apns, tokenA, 1, 8000, pusher); // invite-first: after t1
    await waitForPushes(apns, tokenB, 1, 8000, pusher);
    // A wakes on a new NAT mapping: gets the held call, rings 1.5 s. B wakes on a new port while A rings: forked.
    const wokenA = registerAndAnswer(pusher, await phoneA.newSocket(), paramsA, callId, {
      scenario: "register-and-answer-late.xml",
    });
    await pusher.waitFor(new RegExp(`delivering call-id=${callId} aor=${phoneA.aor}`));
    const wokenB = await phoneB.newSocket();
    const ringingB = await listeningPhone(pusher, wokenB, "ring-until-cancelled.xml");
    await registerPhone(pusher, wokenB, instanceB, { uriParams: uriParamsB });

    const [result, a, b] = await Promise.all([caller, wokenA, ringingB.run]);
    expect(result.code, result.output).toBe(0);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output).toBe(0); // no push param in its R-URI; its CANCEL carried Reason: SIP;cause=200
    expect(pusher.output()).toMatch(new RegExp(`forking call-id=${callId} aor=${phoneA.aor} to it`));
  });

  it("tells a pushed phone that never woke that the call was answered elsewhere, at its alert token", async () => {
    const { pusher, apns } = fixture;
    // A: Kazoo on TCP (connection closed when asleep). B: Linphone's two-token binding (RFC 8599 params in its
    // Contact URI): the call goes as VoIP to its PushKit token, the notice as an alert to its alert token.
    const phoneA = await Phone.create({ transport: "tcp" });
    const phoneB = await Phone.create({ user: phoneA.user });
    // A has an alert token too, so "the phone that answered is not told" below can fail.
    const [tokenA, alertA] = [apns.newDevice(APP_ID), apns.newDevice(APP_ID, "alert")];
    const [alertB, voipB] = [apns.newDevice(APP_ID, "alert"), apns.newDevice(APP_ID, "voip")];
    const paramsA = pushParams(`${alertA}:remote&${tokenA}:voip`, "00000000-0000-0000-0000-0000000000aa");
    await registerPhone(pusher, phoneA, paramsA);
    await registerPhone(pusher, phoneB, `;+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000000000bb>"`, {
      uriParams: `;pn-provider=apns;pn-prid=${alertB}:remote&${voipB}:voip;pn-param=${TEAM_ID}.${APP_ID}.remote&voip`,
    });

    const callId = sharedCallId(phoneA);
    const caller = call(pusher, phoneA, "call-answered.xml", { callId });
    await waitForPushes(apns, tokenA, 1, 8000, pusher);
    await waitForPushes(apns, voipB, 1, 8000, pusher);
    const answered = await registerAndAnswer(pusher, await phoneA.newSocket(), paramsA, callId);
    expect(answered.code, answered.output).toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);

    await waitForPushes(apns, alertB, 1, 5000, pusher);
    const [callPush] = apns.requestsFor(voipB);
    const [endedPush] = apns.requestsFor(alertB);
    expect(callPush.headers["apns-push-type"]).toBe("voip");
    expect((callPush.body as Record<string, unknown>)["call-id"]).toBe(callId);
    expect((endedPush.body as Record<string, unknown>)["call-id"]).toBe(callId);
    expect(endedPush.headers["apns-push-type"]).toBe("alert");
    expect(endedPush.headers["apns-topic"]).toBe(APP_ID);
    expect(endedPush.status).toBe(200);
    expect((endedPush.body as Record<string, unknown>).event).toBe("answered-elsewhere");
    await new Promise((done) => setTimeout(done, 200));
    expect(apns.requestsFor(voipB)).toHaveLength(1);
    expect(apns.requestsFor(tokenA)).toHaveLength(1); // the phone that answered is not told anything
    expect(apns.requestsFor(alertA)).toHaveLength(0);
  });
});

describe("a callee with several callers", () => {
  it("delivers every call waiting for the phone when it registers, oldest first", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token));
    const binding = await silentSocket(phone); // its NAT binding swallows the INVITEs

    // The second call comes once the first is held.
    const callIds = [sharedCallId(phone), sharedCallId(phone)];
    const callers = [call(pusher, phone, "call-answered.xml", { callId: callIds[0] })];
    await waitForPushes(apns, token, 1, 8000, pusher);
    callers.push(call(pusher, phone, "call-answered.xml", { callId: callIds[1] }));
    await waitForPushes(apns, token, 2, 8000, pusher);
    await binding.close();
    const woken = await phone.newSocket();
    const answering = await listeningPhone(pusher, woken, "answer.xml", 2);
    await registerPhone(pusher, woken, pushParams(token));

    for (const caller of await Promise.all(callers)) expect(caller.code, caller.output).toBe(0);
    const answered = await answering.run;
    expect(answered.code, answered.output).toBe(0);
    expect(incomingCalls(answered.output)).toBe(2);
    const delivered = [...pusher.output().matchAll(new RegExp(`delivering call-id=(\\S+) aor=${phone.aor}`, "g"))].map(
      (match) => match[1],
    );
    expect(delivered).toEqual(callIds);
  });

  it("gives a phone that registers twice during one call one INVITE, not two", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token)); // nothing listens at its port: asleep

    const caller = call(pusher, phone, "call-answered.xml");
    await waitForPushes(apns, token, 1, 8000, pusher);
    const woken = await phone.newSocket();
    const answering = await listeningPhone(pusher, woken, "answer-late.xml", 1);
    await registerPhone(pusher, woken, pushParams(token));
    await registerPhone(pusher, woken, pushParams(token)); // while it rings

    expect((await caller).code).toBe(0);
    const answered = await answering.run;
    expect(answered.code, answered.output).toBe(0);
    expect(incomingCalls(answered.output)).toBe(1);
  });
});

describe("a pushed phone whose REGISTER fails", () => {
  it("ends its held call with 480 at once, not at t2 (RFC 8599 §5.6.2)", async () => {
    const { pusher, apns } = fixture;
    const phone = await Phone.create({ transport: "tcp" });
    const token = apns.newDevice(APP_ID);
    await registerPhone(pusher, phone, pushParams(token)); // its connection closed: pushed at once
    const caller = call(pusher, phone, "call-unavailable.xml");
    await waitForPushes(apns, token, 1, 8000, pusher);
    const startedAt = Date.now();
    // q=5 is out of range: the registrar refuses the REGISTER with 400.
    const woken = await phone.newSocket();
    const failed = await runSipp({
      scenario: "register.xml",
      remotePort: pusher.sipPort,
      localIp: woken.address,
      localPort: woken.port,
      transport: woken.transport,
      keys: woken.keys({ contact: woken.contact(`;q=5${pushParams(token)}`) }),
    });
    expect(failed.code).not.toBe(0);
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(result.endedAtMs - startedAt).toBeLessThan(3000); // t2 is 6 s in this file
  });
});

describe("Kamailio after every call of this file", () => {
  it("logged no plugin error, holds no htable lock and keeps no call in pusher_calls", async () => {
    const { pusher } = fixture;
    dumpEveryPusherTable(pusher.rpc);
    await waitUntil(() => callItems(pusher.rpc).length === 0, 5000, "no call left in pusher_calls");
    expect(pluginErrorsIn(pusher.output())).toEqual([]);
  });
});
