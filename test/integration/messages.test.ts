// MESSAGE store-and-wake end to end (docs/messages.md), in the deployment topology: phones on their own loopback
// addresses asleep the way a phone sleeps (nothing answers at its Contact), a sender on another address, the real
// Kamailio with kamailio/kamailio.cfg, the helper and a mock APNs as strict as Apple's. A MESSAGE no phone takes is
// stored (202 Accepted), an alert token gets a message push (a PushKit-only device none), and the phone that
// registers gets the messages oldest first, each removed only after its 2xx; a 480 keeps them. Retention ends on
// the timer; a crash of Kamailio between store and delivery loses nothing. messages.previewInPush is on here (its
// default, off, is test/config.test.ts's).
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MockApns, RecordedRequest } from "../support/mock-apns";
import { PusherProcess, ROOT } from "../support/pusher-process";
import { Phone } from "../support/topology";
import {
  APP_ID,
  CALLER,
  WakeFixture,
  call,
  kamailioCounter,
  registerAndAnswer,
  registerPhone,
  rfc8599AppleParams,
  sharedCallId,
  startWakeFixture,
  waitForPushes,
} from "../support/wake-fixture";
import { waitUntil } from "../support/wait-until";

const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 3000, afterWakeMs: 5000 };

let fixture: WakeFixture;
let apns: MockApns;
let pusher: PusherProcess;

beforeAll(async () => {
  fixture = await startWakeFixture({ timers: TIMERS, messages: { previewInPush: true } });
  ({ apns, pusher } = fixture);
}, 30000);

afterAll(async () => {
  // The fixture's pusher until a test restarts it: stop the one running now.
  await pusher?.stop();
  await apns?.close();
});

/** `pusher devices <aor>`'s "messages waiting" line. */
function messagesWaiting(phone: Phone): number {
  const out = execFileSync(
    process.execPath,
    [join(ROOT, "dist", "cli.js"), "--config", pusher.configPath, "devices", phone.aor],
    { encoding: "utf8" },
  );
  const match = /^messages waiting: (\d+)$/m.exec(out);
  if (!match) throw new Error(`no "messages waiting" line in:\n${out}`);
  return Number(match[1]);
}

function sql(statement: string): string {
  return execFileSync("sqlite3", ["-cmd", ".timeout 5000", join(pusher.dir, "state", "devices.sqlite"), statement], {
    encoding: "utf8",
  });
}

function bodyOf(request: RecordedRequest): Record<string, unknown> {
  return request.body as Record<string, unknown>;
}

describe("a MESSAGE to a phone that sleeps", () => {
  it("is stored (202) and pushed to its alert token only, kept when the phone answers 480, and delivered oldest first at its next REGISTER", async () => {
    const phone = await Phone.create();
    const pushKitOnly = await Phone.create({ user: phone.user });
    const alertToken = apns.newDevice(APP_ID, "alert");
    const voipToken = apns.newDevice(APP_ID, "voip");
    // Both register from a short-lived socket: nothing answers at their Contacts afterwards (asleep).
    await registerPhone(pusher, phone, "", { uriParams: rfc8599AppleParams(alertToken) });
    await registerPhone(pusher, pushKitOnly, "", { uriParams: rfc8599AppleParams(voipToken, "voip") });
    const stored = kamailioCounter(pusher, "messages_stored");

    const callId = sharedCallId(phone);
    const sent = await call(pusher, phone, "send-messages-stored.xml", { callId });
    expect(sent.code, sent.output + pusher.output().slice(-3000)).toBe(0);
    await waitForPushes(apns, alertToken, 2, 8000, pusher);
    const pushes = apns.requestsFor(alertToken);
    for (const push of pushes) {
      expect(push.headers["apns-push-type"]).toBe("alert");
      expect(push.headers["apns-topic"]).toBe(APP_ID);
      expect(push.status).toBe(200);
      expect(bodyOf(push)).toMatchObject({
        event: "message",
        "sender-number": CALLER.number,
        "sender-name": CALLER.name,
        "call-id": callId,
      });
      expect(bodyOf(push)["message-id"]).toMatch(/^[0-9a-f-]{36}$/);
    }
    // messages.previewInPush: the start of the text, a 4-byte character intact (never re-encoded as CESU-8).
    expect(bodyOf(pushes[0]).preview).toMatch(/^first message 😀\s*$/);
    expect((bodyOf(pushes[0]).aps as { alert: { body: string } }).alert.body).toBe(bodyOf(pushes[0]).preview);
    expect(bodyOf(pushes[1]).preview).toMatch(/^second message\s*$/);
    expect(bodyOf(pushes[0])["message-id"]).not.toBe(bodyOf(pushes[1])["message-id"]);
    expect(apns.requestsFor(voipToken)).toHaveLength(0);
    expect(kamailioCounter(pusher, "messages_stored") - stored).toBe(2);
    expect(messagesWaiting(phone)).toBe(2);

    // The phone wakes and refuses the first: both stay, the second is not even sent.
    const refused = await registerAndAnswer(pusher, phone, "", callId, {
      scenario: "register-and-refuse-message.xml",
      uriParams: rfc8599AppleParams(alertToken),
    });
    expect(refused.code, refused.output).toBe(0);
    await pusher.waitFor(new RegExp(`message kept aor=${phone.aor} id=\\S+: the phone answered 480`), 5000);
    expect(messagesWaiting(phone)).toBe(2);

    const delivered = kamailioCounter(pusher, "messages_delivered");
    const received = await registerAndAnswer(pusher, phone, "", callId, {
      scenario: "register-and-receive-two-messages.xml",
      uriParams: rfc8599AppleParams(alertToken),
    });
    expect(received.code, received.output + pusher.output().slice(-3000)).toBe(0);
    await waitUntil(
      () => kamailioCounter(pusher, "messages_delivered") - delivered === 2,
      5000,
      () => `two deliveries; output:\n${pusher.output().slice(-3000)}`,
    );
    expect(messagesWaiting(phone)).toBe(0);
    expect(sql(`SELECT COUNT(*) FROM pusher_messages WHERE aor = '${phone.aor}'`).trim()).toBe("0");
  });

  it("is dropped and counted once messages.retentionDays passed, and not delivered", async () => {
    const phone = await Phone.create();
    const alertToken = apns.newDevice(APP_ID, "alert");
    await registerPhone(pusher, phone, "", { uriParams: rfc8599AppleParams(alertToken) });
    const sent = await call(pusher, phone, "send-message-stored.xml");
    expect(sent.code, sent.output).toBe(0);
    expect(messagesWaiting(phone)).toBe(1);
    const expired = kamailioCounter(pusher, "messages_expired");
    // Seven days pass for this row: its expiry moves into the past (the timer sweeps every few seconds).
    sql(`UPDATE pusher_messages SET expires = ${Math.floor(Date.now() / 1000) - 1} WHERE aor = '${phone.aor}'`);
    await pusher.waitFor(
      new RegExp(`message expired aor=${phone.aor} id=\\S+: not delivered within messages.retentionDays`),
      15000,
    );
    expect(kamailioCounter(pusher, "messages_expired") - expired).toBe(1);
    expect(messagesWaiting(phone)).toBe(0);
    expect(sql(`SELECT COUNT(*) FROM pusher_messages WHERE aor = '${phone.aor}'`).trim()).toBe("0");
  });

  it("survives a crash of Kamailio between store and delivery", async () => {
    const phone = await Phone.create();
    const alertToken = apns.newDevice(APP_ID, "alert");
    await registerPhone(pusher, phone, "", { uriParams: rfc8599AppleParams(alertToken) });
    const callId = sharedCallId(phone);
    const sent = await call(pusher, phone, "send-messages-stored.xml", { callId });
    expect(sent.code, sent.output).toBe(0);
    // Killed right after the 202s: the rows were on disk before them.
    await pusher.crashKamailio();
    pusher = await pusher.restart();
    await pusher.waitFor(/stored messages loaded from the database: \d+ messages/);
    expect(messagesWaiting(phone)).toBe(2);
    const received = await registerAndAnswer(pusher, phone, "", callId, {
      scenario: "register-and-receive-two-messages.xml",
      uriParams: rfc8599AppleParams(alertToken),
    });
    expect(received.code, received.output + pusher.output().slice(-3000)).toBe(0);
    await pusher.waitFor(
      new RegExp(`message delivered aor=${phone.aor} id=\\S+[\\s\\S]*message delivered aor=${phone.aor} id=`),
      5000,
    );
    expect(messagesWaiting(phone)).toBe(0);
  }, 60000);
});
