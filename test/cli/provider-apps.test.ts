// `pusher apps add-apple-token|add-firebase|add-webpush` and `pusher test-push`, as real processes against a
// temporary pusher.json and the mock providers (the child inherits NODE_EXTRA_CA_CERTS).
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MockApns, testCaDir } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { MockWebPush } from "../support/mock-webpush";

let work: string;
let dir: string;
let cli: string;
let p8: string;
let vapidPem: string;
let apns: MockApns;
let fcm: MockFcm;
let webpush: MockWebPush;
const KEY_ID = "KEY1234567";
const TEAM_ID = "TEAM765432";

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "pusher-cli-providers-"));
  cli = join(work, "cli.mjs");
  await build({
    entryPoints: ["src/cli/main.ts"],
    outfile: cli,
    bundle: true,
    platform: "node",
    format: "esm",
    logLevel: "warning",
  });
  const apple = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  p8 = join(work, `AuthKey_${KEY_ID}.p8`);
  writeFileSync(p8, apple.privateKey.export({ type: "pkcs8", format: "pem" }));
  vapidPem = join(work, "vapid.pem");
  writeFileSync(
    vapidPem,
    generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ type: "pkcs8", format: "pem" }),
  );
  apns = await MockApns.start({
    caDir: testCaDir(),
    auth: "token",
    signingKeys: [{ keyId: KEY_ID, teamId: TEAM_ID, publicKey: apple.publicKey }],
  });
  fcm = await MockFcm.start({ caDir: testCaDir() });
  webpush = await MockWebPush.start({ caDir: testCaDir() });
}, 30_000);

afterAll(async () => {
  await Promise.all([apns?.close(), fcm?.close(), webpush?.close()]);
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  dir = mkdtempSync(join(work, "config-"));
});

/** `pusher apps add-apple-token <appId>` with the test's key (p8, KEY_ID, TEAM_ID), then `extra`. */
function addAppleTokenApp(appId: string, ...extra: string[]) {
  return pusher("apps", "add-apple-token", appId, "--key-file", p8, "--key-id", KEY_ID, "--team-id", TEAM_ID, ...extra);
}

function pusher(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, "--config", join(dir, "pusher.json"), ...args], { env: process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

const config = () => JSON.parse(readFileSync(join(dir, "pusher.json"), "utf8"));

describe("pusher apps add-apple-token", () => {
  it("copies the .p8 to credentials/ (0600) and stores key id, team id and host", async () => {
    const result = await addAppleTokenApp("com.example.phone", "--host", apns.host);
    expect(result.code, result.stderr).toBe(0);
    const copy = join(dir, "credentials", "com.example.phone.apple.p8");
    expect(config().apps["com.example.phone"].apple).toEqual({
      keyFile: copy,
      keyId: KEY_ID,
      teamId: TEAM_ID,
      host: apns.host,
    });
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    expect(result.stdout).not.toContain("PRIVATE KEY");
  });

  it("stores --sandbox-host as sandboxHost, checked as --host is", async () => {
    const result = await addAppleTokenApp("com.example.phone", "--sandbox-host", apns.host);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`host api.push.apple.com, sandbox host ${apns.host},`);
    expect(config().apps["com.example.phone"].apple).toMatchObject({
      host: "api.push.apple.com",
      sandboxHost: apns.host,
    });
    const refused = await addAppleTokenApp("com.example.other", "--sandbox-host", "sb:99999");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'pusher: PUSHER_ERR_CONFIG: --sandbox-host: must be host or host:port, got "sb:99999"\n',
    );
    expect(config().apps["com.example.other"]).toBeUndefined();
  });

  it("refuses a key id that is not Apple's 10 characters, and a key that is not EC P-256", async () => {
    const badId = await pusher(
      "apps",
      "add-apple-token",
      "com.example.phone",
      "--key-file",
      p8,
      "--key-id",
      "short",
      "--team-id",
      TEAM_ID,
    );
    expect(badId.code).toBe(1);
    expect(badId.stderr).toContain("--key-id");
    const rsa = join(work, "rsa.pem");
    writeFileSync(
      rsa,
      generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }),
    );
    const badKey = await pusher(
      "apps",
      "add-apple-token",
      "com.example.phone",
      "--key-file",
      rsa,
      "--key-id",
      KEY_ID,
      "--team-id",
      TEAM_ID,
    );
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain("EC P-256");
  });
});

describe("pusher apps add-firebase", () => {
  it("copies the service account JSON and stores its path, host and project (the only one bindings may name)", async () => {
    const account = fcm.createServiceAccount(work, "cli-project");
    const result = await pusher("apps", "add-firebase", "com.example.android", account, "--host", fcm.host);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("cli-project");
    const copy = join(dir, "credentials", "com.example.android.firebase.json");
    expect(config().apps["com.example.android"].firebase).toEqual({
      serviceAccountFile: copy,
      host: fcm.host,
      projectIds: ["cli-project"],
    });
    expect(statSync(copy).mode & 0o777).toBe(0o600);
  });

  it("answers a legacy server key with the message that the legacy API is shut down", async () => {
    const legacyKey =
      "AAAAb1234567:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1OD";
    const asArgument = await pusher("apps", "add-firebase", "com.example.android", legacyKey);
    const file = join(work, "server-key.txt");
    writeFileSync(file, legacyKey + "\n");
    const asFile = await pusher("apps", "add-firebase", "com.example.android", file);
    for (const result of [asArgument, asFile]) {
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/legacy FCM server key.*shut the legacy FCM API down/);
    }
  });
});

describe("pusher apps add-webpush", () => {
  it("stores the VAPID key copy, subject and public key, and prints the public key", async () => {
    const result = await pusher(
      "apps",
      "add-webpush",
      "web.example.com",
      "--vapid-key",
      vapidPem,
      "--subject",
      "mailto:ops@example.com",
    );
    expect(result.code, result.stderr).toBe(0);
    const app = config().apps["web.example.com"].webpush;
    expect(app).toMatchObject({
      vapidKeyFile: join(dir, "credentials", "web.example.com.webpush.pem"),
      subject: "mailto:ops@example.com",
    });
    expect(app.publicKey).toMatch(/^[A-Za-z0-9_-]{87}$/);
    expect(result.stdout).toContain(app.publicKey);
  });

  it("refuses a subject that is neither mailto: nor https:, naming the key", async () => {
    const result = await pusher(
      "apps",
      "add-webpush",
      "web.example.com",
      "--vapid-key",
      vapidPem,
      "--subject",
      "ops@example.com",
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("webpush.subject");
  });
});

describe("pusher apps enable|disable", () => {
  it("disables an app (it keeps its credentials), and test-push then refuses it with PUSHER_ERR_APP_DISABLED", async () => {
    await addAppleTokenApp("com.example.off", "--host", apns.host);
    const disabled = await pusher("apps", "disable", "com.example.off");
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(config().apps["com.example.off"].enabled).toBe(false);
    expect(config().apps["com.example.off"].apple.keyId).toBe(KEY_ID);
    const refused = await pusher("test-push", "com.example.off", "ef".repeat(32));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("PUSHER_ERR_APP_DISABLED");
    expect((await pusher("apps", "enable", "com.example.off")).code).toBe(0);
    expect(config().apps["com.example.off"].enabled).toBeUndefined();
    expect((await pusher("apps", "disable", "no.such.app")).code).toBe(1);
  });
});

describe("pusher test-push", () => {
  it("exits 0 and prints the provider's answer when APNs accepts the push", async () => {
    await addAppleTokenApp("com.example.phone", "--host", apns.host);
    // A PushKit token APNs issued to the app's phone (production).
    const token = apns.addDevice("ab".repeat(32), { bundle: "com.example.phone", kind: "voip" });
    const result = await pusher("test-push", "com.example.phone", token);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/apple accepted the push .*status 200/);
    expect(apns.requestsFor(token)).toHaveLength(1);
  });

  it("exits non-zero with the provider's reason when the token is unregistered", async () => {
    await addAppleTokenApp("com.example.phone", "--host", apns.host);
    const token = "cd".repeat(32);
    apns.replyFor(token, { status: 410, reason: "Unregistered" });
    const result = await pusher("test-push", "com.example.phone", token, "--type", "apple");
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toContain("Unregistered");
    expect(result.stderr).toContain("PUSHER_ERR_APNS_UNREGISTERED");
  });

  it("sends through FCM and Web Push, and needs --type when the app has several providers", async () => {
    await pusher(
      "apps",
      "add-firebase",
      "multi.app",
      fcm.createServiceAccount(work, "multi-project"),
      "--host",
      fcm.host,
    );
    await pusher(
      "apps",
      "add-webpush",
      "multi.app",
      "--vapid-key",
      vapidPem,
      "--subject",
      "https://example.com/contact",
      "--endpoint-hosts",
      new URL(webpush.origin).host,
    );
    expect((await pusher("test-push", "multi.app", "tok")).code).toBe(2);

    const fcmToken = "fcm-token-for-cli-test";
    fcm.replyFor(fcmToken, { status: 404, errorStatus: "NOT_FOUND", errorCode: "UNREGISTERED" });
    const unregistered = await pusher("test-push", "multi.app", fcmToken, "--type", "firebase");
    expect(unregistered.code, unregistered.stdout + unregistered.stderr).toBe(1);
    expect(unregistered.stderr).toContain("UNREGISTERED");
    expect((await pusher("test-push", "multi.app", "another-fcm-token", "--type", "firebase")).code).toBe(0);

    const subscription = webpush.subscribe();
    const sent = await pusher("test-push", "multi.app", JSON.stringify(subscription), "--type", "webpush");
    expect(sent.code, sent.stderr).toBe(0);
    expect(webpush.requestsFor(subscription)[0].payload["caller-id-name"]).toBe("this is a push test");

    // A bare endpoint, as a REGISTER's pn-prid gives it: a push without payload.
    const bare = webpush.subscribe();
    const woken = await pusher("test-push", "multi.app", bare.endpoint, "--type", "webpush");
    expect(woken.code, woken.stderr).toBe(0);
    expect(webpush.requestsFor(bare)[0].payload).toBeNull();
  });
});
