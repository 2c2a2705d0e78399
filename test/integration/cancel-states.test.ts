// A caller's CANCEL in every state a pushed call can be in, over UDP and over TCP, in the deployment topology:
// held (no phone awake: suspended, no branch for tm to cancel), ringing under invite-first (the awake phone
// rings), parallel (the registered contact is tried while the phone is pushed), and delivered but not answered
// (the woken phone rings). Each ends with 200 to the CANCEL, exactly one 487 to the INVITE, the phone's own
// CANCEL where it rings, and no call left in the plugin's table.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callState } from "../support/kamailio-checks";
import { SipCaller } from "../support/sip-caller";
import { Phone, Transport, silentSocket } from "../support/topology";
import {
  WakeFixture,
  pushParams,
  registerAndAnswer,
  registerPhone,
  sharedCallId,
  startWakeFixture,
  waitForPushes,
} from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 8000, afterWakeMs: 8000 };

async function expectCancelled(caller: SipCaller): Promise<void> {
  const cancelledAt = Date.now();
  caller.cancel();
  await caller.waitFor((answer) => answer.method === "CANCEL" && answer.status === 200);
  // At once, not when the timer of a branch towards a sleeping phone fires (8 s here).
  expect((await caller.inviteAnswer(487)).atMs - cancelledAt).toBeLessThan(TIMERS.pushWaitMs / 2);
  await new Promise((done) => setTimeout(done, 300)); // and nothing after it
  expect(caller.inviteFinals()).toEqual([487]);
}

function noCallLeft(fixture: WakeFixture, phone: Phone): Promise<void> {
  return waitUntil(
    () => !callState(fixture.pusher.rpc).includes(phone.aor),
    3000,
    `no call of ${phone.aor} in pusher_calls`,
  );
}

/** A phone asleep the way its transport sleeps: a UDP port that swallows datagrams, or a TCP connection it closed. */
async function asleepPhone(
  fixture: WakeFixture,
  transport: Transport,
): Promise<{ phone: Phone; token: string; wake: () => Promise<void> }> {
  const phone = await Phone.create({ transport });
  const token = fixture.apns.newDevice("com.app.mymobileapp");
  await registerPhone(fixture.pusher, phone, pushParams(token));
  const binding = transport === "udp" ? await silentSocket(phone) : null;
  return { phone, token, wake: async () => binding?.close() };
}

for (const transport of ["udp", "tcp"] as const) {
  describe(`a CANCEL over ${transport.toUpperCase()} (invite-first)`, () => {
    let fixture: WakeFixture;
    beforeAll(async () => {
      fixture = await startWakeFixture({ timers: TIMERS });
    }, 30000);
    afterAll(async () => fixture?.stop());

    it("ends a held call: 200 and 487 at once, and the phone that registers afterwards is not rung", async () => {
      const { phone, token, wake } = await asleepPhone(fixture, transport);
      const caller = await SipCaller.open(fixture.pusher.sipPort, transport);
      try {
        caller.call(phone.user, phone.domain, sharedCallId(phone));
        await waitForPushes(fixture.apns, token, 1, 8000, fixture.pusher);
        await caller.inviteAnswer(182);
        await expectCancelled(caller);
        await noCallLeft(fixture, phone);
        await wake();
        // The phone wakes (on UDP, whatever it slept on) with a socket that counts what reaches it: nothing may.
        const woken = await phone.newSocket({ transport: "udp" });
        const listening = await silentSocket(woken);
        try {
          await registerPhone(fixture.pusher, woken, pushParams(token));
          await new Promise((done) => setTimeout(done, 1000));
          expect(listening.received()).toBe(0);
        } finally {
          await listening.close();
        }
      } finally {
        caller.close();
      }
    });

    it("cancels an awake phone that rings: it gets the CANCEL, nobody is pushed", async () => {
      const phone = await Phone.create({ transport });
      const token = fixture.apns.newDevice("com.app.mymobileapp");
      const callId = sharedCallId(phone);
      const ringing = registerAndAnswer(fixture.pusher, phone, pushParams(token), callId, {
        scenario: "register-and-ring.xml",
      });
      await fixture.pusher.waitFor(new RegExp(`device stored aor=${phone.aor} `));
      const caller = await SipCaller.open(fixture.pusher.sipPort, transport);
      try {
        caller.call(phone.user, phone.domain, callId);
        await caller.inviteAnswer(180);
        await expectCancelled(caller);
        const phoneRun = await ringing;
        expect(phoneRun.code, phoneRun.output).toBe(0);
        expect(fixture.apns.requestsFor(token)).toHaveLength(0);
      } finally {
        caller.close();
      }
    });

    it("cancels a held call delivered to its woken phone before it answers: the phone gets the CANCEL", async () => {
      const { phone, token, wake } = await asleepPhone(fixture, transport);
      const callId = sharedCallId(phone);
      const caller = await SipCaller.open(fixture.pusher.sipPort, transport);
      try {
        caller.call(phone.user, phone.domain, callId);
        await waitForPushes(fixture.apns, token, 1, 8000, fixture.pusher);
        await wake();
        const ringing = registerAndAnswer(fixture.pusher, await phone.newSocket(), pushParams(token), callId, {
          scenario: "register-and-ring.xml",
        });
        await caller.inviteAnswer(180);
        await expectCancelled(caller);
        const phoneRun = await ringing;
        expect(phoneRun.code, phoneRun.output).toBe(0);
        await noCallLeft(fixture, phone);
      } finally {
        caller.close();
      }
    });
  });

  describe(`a CANCEL over ${transport.toUpperCase()} (parallel)`, () => {
    let fixture: WakeFixture;
    beforeAll(async () => {
      fixture = await startWakeFixture({ timers: TIMERS, calls: { strategy: "parallel" } });
    }, 30000);
    afterAll(async () => fixture?.stop());

    it("ends a call whose registered contact is tried while the phone is pushed", async () => {
      const { phone, token } = await asleepPhone(fixture, transport);
      const caller = await SipCaller.open(fixture.pusher.sipPort, transport);
      try {
        caller.call(phone.user, phone.domain, sharedCallId(phone));
        await waitForPushes(fixture.apns, token, 1, 8000, fixture.pusher);
        await caller.inviteAnswer(182);
        await expectCancelled(caller);
        await noCallLeft(fixture, phone);
      } finally {
        caller.close();
      }
    });
  });
}
