// `npm run demo`: one call to a sleeping phone, woken by a push, on loopback and free ports, in the shape of a
// deployment (test/support/topology.ts): Kamailio on 127.0.0.1, the user alice@example.com (a named domain, never
// the proxy's address), her phone on a loopback address of its own with a Contact user unlike "alice", the caller
// on another. The real product (`pusher start`: Kamailio + helper), the tests' mock APNs, and sipp as phone and
// caller:
//   1. the phone registers with push params from its own address and port, then sleeps: the port still takes
//      datagrams but nothing answers (an expired NAT binding, a suspended app),
//   2. a caller calls alice@example.com: Kamailio tries the phone, gets no reply within t1, holds the INVITE and
//      asks for a push,
//   3. the mock APNs receives the push; the woken phone registers again from a new port on its address,
//   4. Kamailio delivers the held call there, the phone answers, the caller hangs up.
// Each step is printed when it happens, timed from the INVITE. Exit 0 when the call was answered, else 1.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { makeTestCa } from "../test/support/make-test-ca.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CA_DIR = join(ROOT, "build", "test-ca");
// The bundle id the test CA's APNs client certificate is issued for (make-test-ca.mjs).
const APP_ID = "com.app.mymobileapp";
const USER = "alice";
// t1 short so the demo is quick; t2/t3 long enough for a loaded machine.
const TIMERS = { inviteFirstMs: 1000, pushWaitMs: 10000, afterWakeMs: 5000 };
const DEADLINE_MS = 25000;

const cleanups = [];
let callStartedAt = 0;
let pusherLines = []; // what `pusher start` printed, shown when the demo fails

/** Prints one step: its time since the INVITE was sent (or "setup" before it). */
function step(text, atMs = Date.now()) {
  const when = callStartedAt ? `+${String(atMs - callStartedAt).padStart(5)} ms` : "    setup";
  console.log(`  ${when}  ${text}`);
}

/** `node build.mjs` when a dist/ artifact is missing or older than a source it is built from. */
async function buildIfNeeded() {
  const artifacts = ["pusher.js", "pusher-helper.js", "cli.js"].map((name) => join(ROOT, "dist", name));
  const newest = (dir) =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .reduce((latest, entry) => Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs), 0);
  const sourcesMs = Math.max(newest(join(ROOT, "src")), statSync(join(ROOT, "build.mjs")).mtimeMs);
  if (artifacts.every((file) => existsSync(file) && statSync(file).mtimeMs >= sourcesMs)) return;
  console.log("building dist/ (node build.mjs)");
  const code = await new Promise((done) =>
    spawn(process.execPath, ["build.mjs"], { cwd: ROOT, stdio: "inherit" }).on("exit", done),
  );
  if (code !== 0) throw new Error("node build.mjs failed");
}

/** The tests' mock APNs and free-port helper are TypeScript: bundle them once into a temp module. */
async function loadTestSupport(work) {
  const outfile = join(work, "support.mjs");
  await build({
    stdin: {
      contents: [
        `export { MockApns } from "./test/support/mock-apns.ts";`,
        `export { freePort, freeMediaPort } from "./test/support/free-port.ts";`,
        `export { DOMAIN, nextAddress, Phone, silentSocket } from "./test/support/topology.ts";`,
      ].join(" "),
      resolveDir: ROOT,
      loader: "ts",
    },
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    logLevel: "warning",
  });
  return import(pathToFileURL(outfile).href);
}

/**
 * One sipp scenario of test/sipp against Kamailio, from `localIp`:`localPort` (a phone's or the caller's own
 * address); `callId` pairs a caller and the phone that answers it. Resolves with its exit code and output.
 */
function sipp(scenario, sipPort, { localIp, localPort, mediaPort, keys, callId }) {
  const args = [
    `127.0.0.1:${sipPort}`,
    "-sf",
    join(ROOT, "test", "sipp", scenario),
    "-i",
    localIp,
    "-p",
    String(localPort),
    "-mp",
    String(mediaPort),
    "-t",
    "u1",
    "-m",
    "1",
    "-timeout",
    "20s",
    "-timeout_error",
    "-nostdin",
  ];
  if (callId) args.push("-cid_str", callId);
  for (const [name, value] of Object.entries(keys)) args.push("-key", name, value);
  const child = spawn("sipp", args, { stdio: ["ignore", "pipe", "pipe"] });
  cleanups.push(() => child.exitCode === null && child.kill("SIGKILL"));
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  return new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`cannot run sipp: ${error.message} (Debian package sip-tester)`)));
    child.on("exit", (code) => resolve({ code, output, endedAt: Date.now() }));
  });
}

/** Keys of the phone scenarios for `phone` on its own socket: Via and Contact name its address and port, the
 * Contact carries Kazoo's push params for `token`. */
function phoneKeys(phone, token) {
  return phone.keys({ contact: phone.contact(`;app-id=${APP_ID};pn-tok=${token};pn-type=apple`) });
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

async function expectSipp(run, what) {
  const result = await run;
  if (result.code !== 0) throw new Error(`${what}: sipp exited with ${result.code}\n${result.output.slice(-2000)}`);
  return result;
}

/** `pusher start` with its output read line by line; `waitFor(re)` resolves with the time the line came. */
function startPusher(configPath) {
  // The helper trusts the mock APNs through the test CA; Node reads NODE_EXTRA_CA_CERTS only at start-up.
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(CA_DIR, "ca.pem") };
  const child = spawn(process.execPath, [join(ROOT, "dist", "cli.js"), "--config", configPath, "start"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines = (pusherLines = []);
  const waiters = [];
  const exited = new Promise((done) => child.on("exit", done));
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      const entry = { line, atMs: Date.now() };
      lines.push(entry);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.done(entry);
        }
      }
    });
  }
  const pusher = {
    lines,
    waitFor(pattern, what, timeoutMs = 10000) {
      const seen = lines.find((entry) => pattern.test(entry.line));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${what}" within ${timeoutMs} ms (waited for ${pattern})`)),
          timeoutMs,
        );
        waiters.push({ pattern, done: (entry) => (clearTimeout(timer), resolve(entry)) });
        exited.then((code) => reject(new Error(`pusher start exited (${code}) before "${what}"`)));
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  return pusher;
}

async function waitForPush(apns, token, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (apns.requestsFor(token).length === 0) {
    if (Date.now() > deadline) throw new Error(`the mock APNs got no push within ${timeoutMs} ms`);
    await new Promise((done) => setTimeout(done, 5));
  }
  return apns.requestsFor(token)[0];
}

async function demo(work) {
  await buildIfNeeded();
  await makeTestCa(CA_DIR);
  const { MockApns, freePort, freeMediaPort, DOMAIN, nextAddress, Phone, silentSocket } = await loadTestSupport(work);
  const apns = await MockApns.start({ caDir: CA_DIR });
  cleanups.push(() => apns.close());

  const sipPort = await freePort();
  const configPath = join(work, "pusher.json");
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        // No digest auth (sip.auth) here: the demo shows the push path; `pusher users add` is for real phones.
        sip: { listen: [`udp:127.0.0.1:${sipPort}`, `tcp:127.0.0.1:${sipPort}`], auth: false },
        link: { port: await freePort() },
        stateDir: join(work, "state"),
        timers: TIMERS,
        userAgents: [{ name: "MyMobileApp", regex: "^MyMobileApp" }],
        apps: { [APP_ID]: { apple: apns.appleConfig({ certificateFile: join(CA_DIR, "apple-app.pem") }) } },
      },
      null,
      2,
    ),
  );
  const pusher = startPusher(configPath);
  cleanups.push(() => pusher.stop());
  await pusher.waitFor(/helper connected/, "helper connected", 20000);
  console.log(`kamailio-pusher on udp:127.0.0.1:${sipPort}, mock APNs on ${apns.host}; config ${configPath}\n`);

  // 1. Alice's phone registers from its own address and port, then its app sleeps: the port is still there (the
  //    NAT binding, the suspended app's socket) but nothing answers on it any more.
  const phone = await Phone.create({ user: USER, domain: DOMAIN });
  const token = apns.newDevice(APP_ID); // a PushKit token, as iOS gives the app
  const phoneSocket = `${phone.address}:${phone.port}`;
  await expectSipp(
    sipp("register.xml", sipPort, {
      localIp: phone.address,
      localPort: phone.port,
      mediaPort: await freeMediaPort(phone.address),
      keys: phoneKeys(phone, token),
    }),
    "REGISTER",
  );
  await pusher.waitFor(new RegExp(`device stored aor=${phone.aor} `), "device stored");
  const asleep = await silentSocket(phone);
  cleanups.push(() => asleep.close());
  step(
    `REGISTER stored: ${phone.aor}'s phone (app ${APP_ID}, pn-tok ${token.slice(0, 8)}…) registered from ${phoneSocket} as sip:${phone.contactUser}@${phoneSocket}, then fell asleep`,
  );

  // 2. The call, from a caller on its own address to Alice's AOR. The phone that will wake answers with the same
  //    Call-ID (sipp hands an incoming INVITE only to the call with its Call-ID).
  const callerAddress = nextAddress();
  const callId = `demo-${randomBytes(6).toString("hex")}@${callerAddress}`;
  callStartedAt = Date.now();
  const caller = sipp("call-answered.xml", sipPort, {
    localIp: callerAddress,
    localPort: await freePort(callerAddress),
    mediaPort: await freeMediaPort(callerAddress),
    callId,
    keys: { callee: phone.user, caller: "15551234567", domain: phone.domain },
  });
  step(`INVITE sip:${phone.aor} sent by the caller at ${callerAddress}`, callStartedAt);
  const held = await pusher.waitFor(
    new RegExp(`push requested call-id=${escapeRegExp(callId)} aor=${escapeRegExp(phone.aor)} `),
    "push requested",
  );
  step(
    `INVITE held: Kamailio tried the phone at ${phoneSocket} (sent ${asleep.received()}×, no answer within t1 = ${TIMERS.inviteFirstMs} ms), suspends the call and asks the helper for a push`,
    held.atMs,
  );

  // 3. The push reaches (mock) APNs; the phone wakes and registers again from a new port on its address.
  const push = await waitForPush(apns, token, 5000);
  step(
    `push sent (APNs got ${push.method} ${push.path.slice(0, "/3/device/".length + 8)}…, apns-push-type ${push.headers["apns-push-type"]}, topic ${push.headers["apns-topic"]}, answered ${push.status})`,
    push.receivedAtMs,
  );
  await asleep.close();
  const woken = await phone.newSocket();
  const registeredAt = Date.now();
  step(`phone REGISTERs: woken by the push, from ${woken.address}:${woken.port}`, registeredAt);
  const answering = sipp("register-and-answer.xml", sipPort, {
    localIp: woken.address,
    localPort: woken.port,
    mediaPort: await freeMediaPort(woken.address),
    keys: phoneKeys(woken, token),
    callId,
  });
  const delivering = await pusher.waitFor(
    new RegExp(`device registered, delivering call-id=${escapeRegExp(callId)} aor=${escapeRegExp(phone.aor)}`),
    "delivering",
  );
  step(
    `delivering: Kamailio continues the held INVITE to the phone's new Contact, sip:${woken.contactUser}@${woken.address}:${woken.port}`,
    delivering.atMs,
  );

  // 4. The phone answers (180, 200), the caller ACKs and hangs up along the route set.
  const answered = await expectSipp(caller, "the caller");
  await expectSipp(answering, "the phone");
  step("call answered: 200 OK reached the caller, who hung up (BYE, 200)", answered.endedAt);
  console.log(
    `\nwake latency: ${delivering.atMs - registeredAt} ms from the phone's REGISTER to the call delivered to it ` +
      `(includes starting sipp; npm run bench measures it on the wire), ${answered.endedAt - callStartedAt} ms for the whole call`,
  );
}

async function main() {
  // `npm run demo | head` closes our stdout early: carry on, so that everything started is still stopped.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
  const work = mkdtempSync(join(tmpdir(), "pusher-demo-"));
  let timer;
  let interrupt;
  const stopped = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done within ${DEADLINE_MS / 1000} s`)), DEADLINE_MS);
    interrupt = (signal) => reject(new Error(`stopped by ${signal}`));
    process.once("SIGINT", interrupt);
    process.once("SIGTERM", interrupt);
  });
  try {
    await Promise.race([demo(work), stopped]);
    process.exitCode = 0;
  } catch (error) {
    console.error(`\ndemo failed: ${error.message}`);
    if (pusherLines.length)
      console.error(
        `last lines of pusher start:\n${pusherLines
          .slice(-25)
          .map((entry) => "  " + entry.line)
          .join("\n")}`,
      );
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    process.removeListener("SIGINT", interrupt);
    process.removeListener("SIGTERM", interrupt);
    // Every process and server this run started, newest first; then its temp directory.
    while (cleanups.length) await Promise.resolve(cleanups.pop()()).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
