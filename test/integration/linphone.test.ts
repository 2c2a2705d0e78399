// A real SIP client nobody here wrote: Debian's linphonec (liblinphone 5.1), headless, registering with RFC 8599
// push params in its Contact (as Linphone's iOS app does: pn-provider=apns, pn-prid, pn-param TeamID.bundle.voip).
// It is killed (asleep: its UDP port closes), called, started again when the mock APNs receives the push (the
// woken app), and auto-answers the call that was held for it.
import { ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeMediaPort, freePort } from "../support/free-port";
import { DOMAIN, nextAddress } from "../support/topology";
import { APP_ID, WakeFixture, startWakeFixture, waitForPushes } from "../support/wake-fixture";
import { runSipp } from "../support/sipp";
import { waitUntil } from "../support/wait-until";

const TEAM_ID = "ABCDE12345";

let fixture: WakeFixture;

beforeAll(async () => {
  fixture = await startWakeFixture({ timers: { inviteFirstMs: 1000, pushWaitMs: 15000, afterWakeMs: 10000 } });
}, 30000);

afterAll(async () => {
  await fixture?.stop();
});

interface Linphone {
  process: ChildProcess;
  output: () => string;
}

/** Runs linphonec with `home`'s linphonerc (kept between runs: its +sip.instance stays, as on a phone). */
function startLinphone(home: string): Linphone {
  // Its database folder must exist, or the core never starts its SIP transports.
  mkdirSync(join(home, ".local", "share", "linphone"), { recursive: true });
  const child = spawn(
    "linphonec",
    ["-c", join(home, "linphonerc"), "-a", "-d", "5", "-l", join(home, "linphone.log")],
    {
      env: { ...process.env, HOME: home },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  return { process: child, output: () => output };
}

async function kill(linphone: Linphone): Promise<void> {
  if (linphone.process.exitCode !== null) return;
  const exited = new Promise((done) => linphone.process.once("exit", done));
  linphone.process.kill("SIGKILL");
  await exited;
}

describe("linphonec with RFC 8599 push params", () => {
  it("registers from its own address, sleeps, is pushed, wakes and auto-answers the held call", async () => {
    const { pusher, apns } = fixture;
    const home = mkdtempSync(join(tmpdir(), "pusher-linphone-"));
    const address = nextAddress();
    const port = await freePort(address);
    const token = apns.newDevice(APP_ID, "voip");
    const user = `lin_${process.pid}`;
    writeFileSync(
      join(home, "linphonerc"),
      [
        "[sip]",
        `bind_address=${address}`,
        "use_ipv6=0",
        `sip_port=${port}`,
        "sip_tcp_port=0",
        "sip_tls_port=0",
        "default_proxy=0",
        "[proxy_0]",
        `reg_proxy=<sip:127.0.0.1:${pusher.sipPort};transport=udp>`,
        `reg_identity=sip:${user}@${DOMAIN}`,
        "reg_expires=600",
        "reg_sendregister=1",
        "publish=0",
        `contact_parameters=pn-provider=apns;pn-prid=${token};pn-param=${TEAM_ID}.${APP_ID}.voip`,
        "[rtp]",
        `audio_rtp_port=${await freeMediaPort(address)}`,
        "",
      ].join("\n"),
    );
    const aor = `${user}@${DOMAIN}`;
    let linphone = startLinphone(home);
    try {
      await pusher.waitFor(new RegExp(`device stored aor=${aor} .*provider=apple`), 15000);
      // Its Contact names its own loopback address, not the proxy's.
      const bindings = pusher.rpc("ul.lookup", "location", aor);
      expect(bindings).toContain(`@${address}:${port}`);
      await kill(linphone); // asleep: iOS froze the app, its socket is gone

      const caller = runSipp({
        scenario: "call-answered.xml",
        remotePort: pusher.sipPort,
        keys: { callee: user, caller: "15551234567", domain: DOMAIN },
        timeoutSeconds: 30,
      });
      await waitForPushes(apns, token, 1, 10000, pusher);
      const [push] = apns.requestsFor(token);
      expect(push.headers["apns-push-type"]).toBe("voip");
      expect(push.headers["apns-topic"]).toBe(`${APP_ID}.voip`);
      expect(push.status).toBe(200);

      linphone = startLinphone(home); // the push woke the app: it registers and auto-answers
      const call = await caller;
      expect(call.code, call.output + "\n" + linphone.output().slice(-2000)).toBe(0);
      await waitUntil(
        () => /delivering call-id=\S+ aor=/.test(pusher.output()),
        2000,
        "the held call's delivery in the log",
      );
      // The INVITE it got names its Contact without any push param (RFC 8599 §13).
      const invites = readFileSync(join(home, "linphone.log"), "latin1").match(/^INVITE sip:\S+/gm) ?? [];
      expect(invites.length).toBeGreaterThan(0);
      for (const invite of invites) expect(invite).not.toMatch(/;pn-/i);
    } finally {
      await kill(linphone);
      rmSync(home, { recursive: true, force: true });
    }
  });
});
