// `pusher check` against the mock providers: every kind of credential passes offline and online; an expired
// certificate, a key that is not the certificate's and a certificate the server refuses fail with exit 1.
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/free-port";
import { makeAppCertificate } from "../support/make-app-certificate";
import { MockApns } from "../support/mock-apns";
import { MockFcm } from "../support/mock-fcm";
import { ROOT, TEST_CA_DIR } from "../support/pusher-process";
import { readVapidKey, vapidPublicKey } from "../../src/helper/webpush-sender";

const vapidPublicKeyOf = (file: string) => vapidPublicKey(readVapidKey(file));

const DAY_MS = 86_400_000;
let apns: MockApns;
let apnsToken: MockApns;
let fcm: MockFcm;
let dir: string;

function check(config: object): Promise<{ code: number; stdout: string; stderr: string }> {
  const configPath = join(mkdtempSync(join(dir, "config-")), "pusher.json");
  writeFileSync(configPath, JSON.stringify(config));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, "dist", "cli.js"), "--config", configPath, "check"],
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

function lineOf(stdout: string, appId: string): string {
  return stdout.split("\n").find((line) => line.includes(` ${appId}: `)) ?? `(no line for ${appId} in)\n${stdout}`;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "pusher-check-"));
  const signing = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  writeFileSync(join(dir, "AuthKey_KEY0000001.p8"), signing.privateKey.export({ type: "pkcs8", format: "pem" }));
  apns = await MockApns.start({ caDir: TEST_CA_DIR });
  apnsToken = await MockApns.start({
    caDir: TEST_CA_DIR,
    auth: "token",
    signingKeys: [{ keyId: "KEY0000001", teamId: "TEAM000001", publicKey: signing.publicKey }],
  });
  fcm = await MockFcm.start({ caDir: TEST_CA_DIR });
  const vapid = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  writeFileSync(join(dir, "vapid.pem"), vapid.privateKey.export({ type: "pkcs8", format: "pem" }));
});

afterAll(async () => {
  await apns?.close();
  await apnsToken?.close();
  await fcm?.close();
});

describe("pusher check", () => {
  it("passes every kind of credential against the mock providers, one line per app", async () => {
    const result = await check({
      apps: {
        "com.app.mymobileapp": {
          apple: {
            certificateFile: join(TEST_CA_DIR, "apple-app.pem"),
            host: apns.host,
            sandboxHost: apns.sandboxHost,
          },
        },
        "com.app.token": {
          apple: {
            keyFile: join(dir, "AuthKey_KEY0000001.p8"),
            keyId: "KEY0000001",
            teamId: "TEAM000001",
            host: apnsToken.host,
            sandboxHost: apnsToken.sandboxHost,
          },
        },
        "com.app.android": {
          firebase: {
            serviceAccountFile: fcm.createServiceAccount(dir, "check-project"),
            host: fcm.host,
            projectIds: ["check-project"],
          },
        },
        // Written before projectIds existed: bindings naming any project are stored (pusher start fills it in).
        "com.app.older": {
          firebase: { serviceAccountFile: fcm.createServiceAccount(dir, "older-project"), host: fcm.host },
        },
        "web.app": {
          webpush: {
            vapidKeyFile: join(dir, "vapid.pem"),
            subject: "mailto:ops@example.com",
            publicKey: vapidPublicKeyOf(join(dir, "vapid.pem")),
          },
        },
        "web.nokey": { webpush: { vapidKeyFile: join(dir, "vapid.pem"), subject: "mailto:ops@example.com" } },
      },
    });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    // Without publicKey the REGISTER 2xx cannot carry +sip.vapid: a warning, with the value to set.
    expect(lineOf(result.stdout, "web.nokey")).toContain(
      `webpush.publicKey is not set: REGISTER replies carry no +sip.vapid (set it to ${vapidPublicKeyOf(join(dir, "vapid.pem"))})`,
    );
    expect(lineOf(result.stdout, "web.nokey")).toMatch(/^WARN /);
    expect(lineOf(result.stdout, "com.app.mymobileapp")).toMatch(
      /^ok {3}com\.app\.mymobileapp: apple certificate expires \d{4}-\d\d-\d\d \(\d+ days\); TLS to https:\/\/127\.0\.0\.1:\d+ with the certificate ok; TLS to https:\/\/127\.0\.0\.1:\d+ \(sandbox\) with the certificate ok$/,
    );
    expect(lineOf(result.stdout, "com.app.token")).toMatch(/^ok .*signs; TLS to \S+ ok; TLS to \S+ \(sandbox\) ok$/);
    expect(lineOf(result.stdout, "com.app.android")).toMatch(
      /^ok .*OAuth token from https:\/\/127\.0\.0\.1:\d+\S* ok; TLS to .* ok$/,
    );
    expect(lineOf(result.stdout, "web.app")).toMatch(/^ok .*VAPID key/);
    expect(lineOf(result.stdout, "com.app.older")).toMatch(
      /^WARN .*WARN firebase.projectIds is not set: REGISTERs naming any Firebase project are stored .*set it to \["older-project"\]/,
    );
  });

  it("warns, and still passes, when the sandbox host cannot be reached (only apns.dev devices need it)", async () => {
    const closed = await freePort();
    const result = await check({
      apps: {
        "com.app.mymobileapp": {
          apple: {
            certificateFile: join(TEST_CA_DIR, "apple-app.pem"),
            host: apns.host,
            sandboxHost: `127.0.0.1:${closed}`,
          },
        },
      },
    });
    expect(result.code, result.stdout).toBe(0);
    expect(lineOf(result.stdout, "com.app.mymobileapp")).toMatch(
      /^WARN .*with the certificate ok; WARN TLS to https:\/\/127\.0\.0\.1:\d+ \(sandbox\) with the certificate failed: .*apns\.dev/,
    );
  });

  it("fails an expired certificate with exit 1 and says when it expired", async () => {
    const expired = makeAppCertificate(dir, "expired", {
      caDir: TEST_CA_DIR,
      bundleId: "com.app.expired",
      notBefore: new Date(Date.now() - 400 * DAY_MS),
      notAfter: new Date(Date.now() - 2 * DAY_MS),
    });
    const result = await check({
      apps: {
        "com.app.mymobileapp": {
          apple: {
            certificateFile: join(TEST_CA_DIR, "apple-app.pem"),
            host: apns.host,
            sandboxHost: apns.sandboxHost,
          },
        },
        "com.app.expired": { apple: { certificateFile: expired, host: apns.host, sandboxHost: apns.sandboxHost } },
      },
    });
    expect(result.code).toBe(1);
    expect(lineOf(result.stdout, "com.app.expired")).toMatch(/^FAIL com\.app\.expired: .*the certificate expired on/);
    expect(lineOf(result.stdout, "com.app.mymobileapp")).toMatch(/^ok /);
    expect(result.stderr).toContain("1 app(s) failed the check");
  });

  it("warns, and still passes, when the certificate expires within 30 days", async () => {
    const soon = makeAppCertificate(dir, "soon", {
      caDir: TEST_CA_DIR,
      bundleId: "com.app.soon",
      notAfter: new Date(Date.now() + 10 * DAY_MS),
    });
    const result = await check({
      apps: { "com.app.soon": { apple: { certificateFile: soon, host: apns.host, sandboxHost: apns.sandboxHost } } },
    });
    expect(result.code, result.stdout).toBe(0);
    expect(lineOf(result.stdout, "com.app.soon")).toMatch(
      /^WARN com\.app\.soon: WARN apple certificate expires .* \((9|10) days\): renew it soon/,
    );
  });

  it("fails a PEM whose key is not the certificate's", async () => {
    const other = makeAppCertificate(dir, "other", { caDir: TEST_CA_DIR, bundleId: "com.app.other" });
    const certificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(
      readFileSync(join(TEST_CA_DIR, "apple-app.pem"), "utf8"),
    )![0];
    const wrongKey = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(
      readFileSync(other, "utf8"),
    )![0];
    writeFileSync(join(dir, "mismatch.pem"), certificate + wrongKey);
    const result = await check({
      apps: {
        "com.app.mymobileapp": {
          apple: { certificateFile: join(dir, "mismatch.pem"), host: apns.host, sandboxHost: apns.sandboxHost },
        },
      },
    });
    expect(result.code).toBe(1);
    expect(lineOf(result.stdout, "com.app.mymobileapp")).toMatch(
      /^FAIL .*the private key does not belong to the certificate/,
    );
  });

  it("fails online when the server refuses the certificate (not from its CA)", async () => {
    const selfSigned = join(dir, "self-signed.pem");
    const work = mkdtempSync(join(dir, "self-"));
    await new Promise<void>((resolve, reject) =>
      execFile(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-keyout",
          join(work, "key.pem"),
          "-out",
          join(work, "cert.pem"),
          "-days",
          "30",
          "-subj",
          "/UID=com.app.mymobileapp/CN=self",
        ],
        (error) => (error ? reject(error) : resolve()),
      ),
    );
    writeFileSync(
      selfSigned,
      readFileSync(join(work, "cert.pem"), "utf8") + readFileSync(join(work, "key.pem"), "utf8"),
    );
    const result = await check({
      apps: {
        "com.app.mymobileapp": {
          apple: { certificateFile: selfSigned, host: apns.host, sandboxHost: apns.sandboxHost },
        },
      },
    });
    expect(result.code).toBe(1);
    expect(lineOf(result.stdout, "com.app.mymobileapp")).toMatch(
      /^FAIL .*apple certificate expires .*; FAIL TLS to https:\/\/127\.0\.0\.1:\d+ with the certificate failed: /,
    );
  });
});
