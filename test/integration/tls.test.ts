// SIP over TLS with the reference cfg: `pusher start` with a tls: listen address writes tls.cfg from sip.tls and
// defines WITH_TLS. A phone on its own loopback address (a user of the named domain, a Contact user unlike its
// AOR user) registers over TLS and its push device is stored; when it closes its connection (iOS does when the
// app sleeps) a call pushes it at once, and it gets the call on the new TLS connection it registers from.
// (Debian's sipp is built without TLS: the phone is a Node TLS socket, test/support/tls-phone.ts.)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freePort } from "../support/free-port";
import { MockApns } from "../support/mock-apns";
import { PusherProcess, TEST_CA_DIR } from "../support/pusher-process";
import { runSipp } from "../support/sipp";
import { TlsPhone } from "../support/tls-phone";
import { nextAddress, Phone } from "../support/topology";
import {
  APP_ID,
  USER_AGENT,
  WakeFixture,
  callKeys,
  pushParams,
  sharedCallId,
  startWakeFixture,
  waitForPushes,
} from "../support/wake-fixture";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 6000, afterWakeMs: 6000 };

let fixture: WakeFixture;
let apns: MockApns;
let pusher: PusherProcess;
let udpPort: number;
let tlsPort: number;

beforeAll(async () => {
  udpPort = await freePort();
  tlsPort = await freePort();
  fixture = await startWakeFixture({
    timers: TIMERS,
    sip: {
      listen: [`udp:127.0.0.1:${udpPort}`, `tls:127.0.0.1:${tlsPort}`],
      tls: { certificateFile: join(TEST_CA_DIR, "server.pem"), keyFile: join(TEST_CA_DIR, "server.key") },
    },
  });
  ({ apns, pusher } = fixture);
}, 30000);

afterAll(async () => {
  await fixture?.stop();
});

beforeEach(() => {
  apns.requests.length = 0;
});

describe("SIP over TLS (WITH_TLS)", () => {
  it("answers a REGISTER over TLS with 200 and stores its push device", async () => {
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    const tlsPhone = await TlsPhone.open(tlsPort, phone);
    const response = await tlsPhone.register(
      tlsPhone.contact("", `;app-id=${APP_ID};pn-tok=${token};pn-type=apple`),
      USER_AGENT,
    );
    await tlsPhone.close();
    expect(response).toMatch(/^SIP\/2\.0 200 /);
    expect(readFileSync(join(pusher.dir, "state", "tls.cfg"), "utf8")).toContain(join(TEST_CA_DIR, "server.pem"));
    const devices = pusher.rpc("htable.dump", "pusher_devices");
    expect(devices).toContain(phone.aor);
    expect(devices).toContain(token);
    expect(pusher.rpc("ul.lookup", "location", phone.aor)).toContain(
      `sip:${phone.contactUser}@${phone.address}:${phone.port};transport=tls`,
    );
  });

  it("pushes at once, not after t1, a phone whose TLS connection is closed, and hands it the call on its new connection", async () => {
    const phone = await Phone.create();
    const token = apns.newDevice(APP_ID);
    const asleep = await TlsPhone.open(tlsPort, phone);
    expect(await asleep.register(asleep.contact(pushParams(token)), USER_AGENT)).toMatch(/^SIP\/2\.0 200 /);
    await asleep.close(); // the app sleeps: iOS closes its socket

    const callId = sharedCallId(phone);
    const startedAt = Date.now();
    const caller = runSipp({
      scenario: "call-answered.xml",
      remotePort: udpPort,
      localIp: nextAddress(),
      callId,
      keys: callKeys(phone),
    });
    await waitForPushes(apns, token, 1, 8000, pusher);
    expect(apns.requestsFor(token)[0].receivedAtMs - startedAt).toBeLessThan(TIMERS.inviteFirstMs);
    expect(apns.requestsFor(token)[0].status).toBe(200);

    const woken = await TlsPhone.open(tlsPort, await phone.newSocket());
    expect(await woken.register(woken.contact(pushParams(token)), USER_AGENT)).toMatch(/^SIP\/2\.0 200 /);
    const invite = await woken.request("INVITE");
    // To the Contact it registered on this connection, without push params (RFC 8599 §13).
    expect(invite.split("\r\n")[0]).toBe(
      `INVITE sip:${phone.contactUser}@${woken.phone.address}:${woken.phone.port};transport=tls SIP/2.0`,
    );
    woken.reply(invite, 180, "Ringing");
    woken.reply(invite, 200, "OK");
    await woken.request("ACK");
    const bye = await woken.request("BYE");
    woken.reply(bye, 200, "OK");
    const result = await caller;
    expect(result.code, result.output).toBe(0);
    expect(result.output).not.toMatch(/500 Server Error/);
    expect(apns.requestsFor(token)).toHaveLength(1);
    await woken.close();
  });
});
