// `pusher import-kazoo`: a Kazoo system_config/pusher document as CouchDB stores it, imported by the bundled CLI.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { build } from "esbuild";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let work: string;
let dir: string;
let cli: string;
let goodPem: string;
let encryptedPem: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "pusher-import-test-"));
  cli = join(work, "cli.mjs");
  await build({
    entryPoints: ["src/cli/main.ts"],
    outfile: cli,
    bundle: true,
    platform: "node",
    format: "esm",
    logLevel: "warning",
  });
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: work, stdio: "pipe" });
  // What Kazoo's add_apple_app stored: the certificate and its unencrypted RSA key, as one PEM string.
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/UID=com.acme.phone/CN=Apple VoIP Services: com.acme.phone",
    "-days",
    "30",
    "-keyout",
    "app.key",
    "-out",
    "app.crt",
  );
  openssl("pkey", "-in", "app.key", "-aes256", "-passout", "pass:x", "-out", "app.enc.key");
  const read = (name: string) => readFileSync(join(work, name), "utf8");
  goodPem = read("app.crt") + read("app.key");
  encryptedPem = read("app.crt") + read("app.enc.key");
}, 30_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeEach(() => {
  dir = mkdtempSync(join(work, "config-"));
});

/** A system_config/pusher document as `GET /system_config/pusher` on CouchDB returns it. */
function kazooDocument(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    _id: "pusher",
    _rev: "14-5b7f0e3c2a1d4e6f8a9b0c1d2e3f4a5b",
    pvt_account_db: "system_config",
    pvt_account_id: "system_config",
    pvt_type: "config",
    pvt_created: 63712345678,
    pvt_modified: 63798765432,
    default: {
      "User-Agents": {
        AcmePhone: {
          regex: "^AcmePhone",
          properties: {
            "Token-App": "app-id",
            "Token-Type": "pn-type",
            "Token-ID": "pn-tok",
            "Token-Public-Proxy": "Proxy-URI",
          },
        },
        Legacy: {
          regex: "Linphone",
          properties: { "Token-App": "X-App", "Token-Type": "X-Type", "Token-ID": "X-Token" },
        },
      },
      // Kazoo writes the defaults it read back into "default".
      apple: { host: "api.push.apple.com", headers: {} },
    },
    "com.acme.phone.dev": {
      apple: {
        certificate: goodPem,
        host: "api.development.push.apple.com",
        apns_topic: "com.acme.phone",
        enabled: true,
      },
    },
    "com.acme.retired": { apple: { certificate: goodPem, enabled: false } },
    "com.acme.android": {
      firebase: { api_key: "AAAAbCdEfGh:APA91bHdXk3PrLq-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG", enabled: true },
    },
    ...overrides,
  };
}

function importDocument(document: unknown, ...extra: string[]) {
  const file = join(dir, "system_config-pusher.json");
  writeFileSync(file, JSON.stringify(document, null, 2));
  const result = spawnSync(
    process.execPath,
    [cli, "--config", join(dir, "pusher.json"), "import-kazoo", file, ...extra],
    { encoding: "utf8" },
  );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function configOnDisk(): any {
  return JSON.parse(readFileSync(join(dir, "pusher.json"), "utf8"));
}

describe("pusher import-kazoo", () => {
  it("imports the rules in order with their Contact params and the APNs apps, ignoring CouchDB's keys", () => {
    const result = importDocument(kazooDocument());
    expect(result.code, result.stderr).toBe(0);

    const config = configOnDisk();
    expect(config.userAgents).toEqual([
      { name: "AcmePhone", regex: "^AcmePhone", properties: { appId: "app-id", type: "pn-type", token: "pn-tok" } },
      { name: "Legacy", regex: "Linphone", properties: { appId: "X-App", type: "X-Type", token: "X-Token" } },
    ]);
    const devCopy = join(dir, "credentials", "com.acme.phone.dev.apple.pem");
    const retiredCopy = join(dir, "credentials", "com.acme.retired.apple.pem");
    expect(config.apps).toEqual({
      "com.acme.phone.dev": {
        apple: {
          certificateFile: devCopy,
          host: "api.development.push.apple.com",
          sandboxHost: "api.development.push.apple.com",
        },
      },
      "com.acme.retired": { apple: { certificateFile: retiredCopy, host: "api.push.apple.com" }, enabled: false },
    });
    expect(Object.keys(config).sort()).toEqual(["apps", "userAgents"]);
    expect(readFileSync(devCopy, "utf8")).toBe(goodPem);
    expect(statSync(devCopy).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "credentials")).mode & 0o777).toBe(0o700);

    expect(result.stdout).toMatch(/^imported user agent rule AcmePhone .*\nimported user agent rule Legacy /m);
    expect(result.stdout).toContain("imported apple app com.acme.phone.dev: host api.development.push.apple.com");
    expect(result.stdout).toMatch(/imported apple app com\.acme\.retired: .*disabled/);
    expect(result.stdout).toMatch(/skipped default\.User-Agents\.AcmePhone\.properties\.Token-Public-Proxy: /);
    expect(result.stdout).toMatch(
      /skipped com\.acme\.android\.firebase\.api_key: .*legacy.*2024.*pusher apps add-firebase com\.acme\.android <service-account\.json>/,
    );
    expect(result.stdout).toMatch(/4 imported, 2 skipped, 0 failed; .*pusher\.json updated/);
    expect(result.stdout + result.stderr).not.toContain("PRIVATE KEY");
    expect(result.stdout).not.toMatch(/_rev|pvt_/);
  });

  it("replaces a rule of the same name where it stands and keeps the rules and apps already there", () => {
    writeFileSync(
      join(dir, "pusher.json"),
      JSON.stringify({
        userAgents: [
          { name: "First", regex: "^First" },
          { name: "AcmePhone", regex: "^Old", strategy: "push-first" },
        ],
        timers: { pushWaitMs: 15000 },
      }),
    );
    const result = importDocument({
      default: { "User-Agents": { AcmePhone: { regex: "^AcmePhone" }, Zed: { regex: "^Zed" } } },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(configOnDisk()).toEqual({
      userAgents: [
        { name: "First", regex: "^First" },
        { name: "AcmePhone", regex: "^AcmePhone", strategy: "push-first" },
        { name: "Zed", regex: "^Zed" },
      ],
      timers: { pushWaitMs: 15000 },
    });
    expect(result.stdout).toContain('imported user agent rule AcmePhone "^AcmePhone" (replaced)');
  });

  it("gives an app Kazoo pushed to the APNs sandbox that host as sandboxHost too, and leaves production apps' alone", () => {
    const result = importDocument({
      default: { apple: { host: "api.push.apple.com" } },
      "com.acme.dev": { apple: { certificate: goodPem, host: "api.development.push.apple.com:2197" } },
      "com.acme.binary": { apple: { certificate: goodPem, host: "gateway.sandbox.push.apple.com" } },
      "com.acme.sandbox": { apple: { certificate: goodPem, host: "api.sandbox.push.apple.com" } },
      "com.acme.store": { apple: { certificate: goodPem } },
      "com.acme.proxy": { apple: { certificate: goodPem, host: "apns-proxy.example.com:8443" } },
    });
    expect(result.code, result.stderr).toBe(0);
    const apple = (appId: string) => {
      const { host, sandboxHost } = configOnDisk().apps[appId].apple;
      return { host, sandboxHost };
    };
    // Kazoo sent all of such an app's pushes there, and its phones never say apns.dev: both keys name the sandbox.
    expect(apple("com.acme.dev")).toEqual({
      host: "api.development.push.apple.com:2197",
      sandboxHost: "api.development.push.apple.com:2197",
    });
    expect(apple("com.acme.binary")).toEqual({
      host: "api.sandbox.push.apple.com",
      sandboxHost: "api.sandbox.push.apple.com",
    });
    expect(apple("com.acme.sandbox")).toEqual({
      host: "api.sandbox.push.apple.com",
      sandboxHost: "api.sandbox.push.apple.com",
    });
    expect(apple("com.acme.store")).toEqual({ host: "api.push.apple.com", sandboxHost: undefined });
    expect(apple("com.acme.proxy")).toEqual({ host: "apns-proxy.example.com:8443", sandboxHost: undefined });
    expect(result.stdout).toContain(
      "imported apple app com.acme.dev: host api.development.push.apple.com:2197 (the APNs sandbox: sandboxHost too), certificate",
    );
    expect(result.stdout).toMatch(/imported apple app com\.acme\.store: host api\.push\.apple\.com, certificate/);
  });

  it("prints what it would import and writes nothing with --dry-run", () => {
    const result = importDocument(kazooDocument(), "--dry-run");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^would import user agent rule AcmePhone/m);
    expect(result.stdout).toContain("dry run, nothing written");
    expect(existsSync(join(dir, "pusher.json"))).toBe(false);
    expect(existsSync(join(dir, "credentials"))).toBe(false);
  });

  it("imports the good items, reports an encrypted key and a regex Kamailio cannot run, and exits 1", () => {
    const result = importDocument(
      kazooDocument({
        "com.acme.locked": { apple: { certificate: encryptedPem } },
        default: { "User-Agents": { Behind: { regex: "(?<=Acme)Phone" }, AcmePhone: { regex: "^AcmePhone" } } },
      }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^error com\.acme\.locked\.apple: com\.acme\.locked\.apple\.certificate: the private key is encrypted/m,
    );
    expect(result.stderr).toMatch(/^error default\.User-Agents\.Behind: userAgents\[0\]\.regex: uses lookbehind/m);
    expect(result.stderr).toMatch(/^pusher: PUSHER_ERR_IMPORT: 2 item\(s\) of .* could not be imported/m);
    const config = configOnDisk();
    expect(config.userAgents).toEqual([{ name: "AcmePhone", regex: "^AcmePhone" }]);
    expect(Object.keys(config.apps).sort()).toEqual(["com.acme.phone.dev", "com.acme.retired"]);
    expect(existsSync(join(dir, "credentials", "com.acme.locked.apple.pem"))).toBe(false);
  });

  it("exits 1 when the document holds nothing it can import (a legacy FCM key only)", () => {
    const result = importDocument({
      _id: "pusher",
      "com.acme.android": { firebase: { api_key: "AIzaSyA-0123456789abcdefghijklmnopqrstu" } },
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("pusher apps add-firebase com.acme.android <service-account.json>");
    expect(result.stderr).toMatch(/^pusher: PUSHER_ERR_IMPORT: nothing to import from /m);
    expect(existsSync(join(dir, "pusher.json"))).toBe(false);
  });

  it("refuses --dry-run with another command and a missing file argument as usage errors", () => {
    const dryRunElsewhere = spawnSync(
      process.execPath,
      [cli, "--config", join(dir, "pusher.json"), "ua", "list", "--dry-run"],
      { encoding: "utf8" },
    );
    expect(dryRunElsewhere.status).toBe(2);
    const noFile = spawnSync(process.execPath, [cli, "--config", join(dir, "pusher.json"), "import-kazoo"], {
      encoding: "utf8",
    });
    expect(noFile.status).toBe(2);
  });
});
