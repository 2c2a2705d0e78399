// Runs the bundled CLI as a real process against a temporary pusher.json.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { build } from "esbuild";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ERROR_CODES } from "../../src/errors";

let work: string; // bundle and certificates, shared by all tests
let dir: string; // one fresh config directory per test
let cli: string;
let goodPem: string;
let encryptedPem: string;
let otherKeyPem: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "pusher-cli-test-"));
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
  for (const name of ["a", "b"]) {
    openssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      "/CN=test",
      "-days",
      "2",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
    );
  }
  openssl("pkey", "-in", "a.key", "-aes256", "-passout", "pass:x", "-out", "a.enc.key");
  const read = (name: string) => readFileSync(join(work, name), "utf8");
  goodPem = join(work, "good.pem");
  writeFileSync(goodPem, read("a.crt") + read("a.key"));
  encryptedPem = join(work, "encrypted.pem");
  writeFileSync(encryptedPem, read("a.crt") + read("a.enc.key"));
  otherKeyPem = join(work, "other-key.pem");
  writeFileSync(otherKeyPem, read("a.crt") + read("b.key"));
}, 30_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeEach(() => {
  dir = mkdtempSync(join(work, "config-"));
});

function pusher(...args: string[]) {
  const result = spawnSync(process.execPath, [cli, "--config", join(dir, "pusher.json"), ...args], {
    encoding: "utf8",
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function configOnDisk(): any {
  return JSON.parse(readFileSync(join(dir, "pusher.json"), "utf8"));
}

describe("pusher apps", () => {
  it("stores a 0600 copy of the PEM under credentials/ and its path with the default host", () => {
    const result = pusher("apps", "add-apple", "com.example.phone", goodPem);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("com.example.phone");
    expect(result.stdout).not.toContain("PRIVATE KEY");

    const copy = join(dir, "credentials", "com.example.phone.apple.pem");
    expect(configOnDisk()).toEqual({
      apps: { "com.example.phone": { apple: { certificateFile: copy, host: "api.push.apple.com" } } },
    });
    expect(readFileSync(copy, "utf8")).toBe(readFileSync(goodPem, "utf8"));
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "credentials")).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "pusher.json")).mode & 0o777).toBe(0o600);
  });

  it("keeps a custom host such as the sandbox or host:port", () => {
    expect(pusher("apps", "add-apple", "com.example.phone.dev", goodPem, "api.development.push.apple.com").code).toBe(
      0,
    );
    expect(pusher("apps", "add-apple", "com.example.test", goodPem, "127.0.0.1:2197").code).toBe(0);
    const apps = configOnDisk().apps;
    expect(apps["com.example.phone.dev"].apple.host).toBe("api.development.push.apple.com");
    expect(apps["com.example.test"].apple.host).toBe("127.0.0.1:2197");
  });

  it("stores --sandbox-host as the app's sandboxHost, and refuses one that is not host or host:port as --host is", () => {
    const saved = pusher("apps", "add-apple", "com.example.phone", goodPem, "--sandbox-host", "127.0.0.1:2197");
    expect(saved.code, saved.stderr).toBe(0);
    expect(saved.stdout).toContain("host api.push.apple.com, sandbox host 127.0.0.1:2197,");
    expect(configOnDisk().apps["com.example.phone"].apple).toEqual({
      certificateFile: join(dir, "credentials", "com.example.phone.apple.pem"),
      host: "api.push.apple.com",
      sandboxHost: "127.0.0.1:2197",
    });
    // After a positional host too; without the option the key stays out (the default is Apple's sandbox).
    expect(
      pusher("apps", "add-apple", "com.example.test", goodPem, "127.0.0.1:2196", "--sandbox-host=sb.example").code,
    ).toBe(0);
    expect(configOnDisk().apps["com.example.test"].apple).toMatchObject({
      host: "127.0.0.1:2196",
      sandboxHost: "sb.example",
    });
    expect(configOnDisk().apps["com.example.phone"].apple.sandboxHost).toBe("127.0.0.1:2197");
    const before = readFileSync(join(dir, "pusher.json"), "utf8");
    const refused = pusher("apps", "add-apple", "com.example.other", goodPem, "--sandbox-host", "https://sandbox");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'pusher: PUSHER_ERR_CONFIG: --sandbox-host: must be host or host:port, got "https://sandbox"\n',
    );
    expect(readFileSync(join(dir, "pusher.json"), "utf8")).toBe(before);
    // Only the add-apple commands take it.
    const firebase = pusher("apps", "add-firebase", "com.example.android", goodPem, "--sandbox-host", "sb.example");
    expect(firebase.code).toBe(2);
    expect(firebase.stderr).toContain('--sandbox-host is not an option of "apps add-firebase"');
  });

  it("refuses a host that is not host or host:port", () => {
    const result = pusher("apps", "add-apple", "com.example.phone", goodPem, "https://api.push.apple.com");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pusher: PUSHER_ERR_CONFIG: host: must be host or host:port/);
  });

  it("refuses an encrypted private key with a coded one-line message and writes nothing", () => {
    const result = pusher("apps", "add-apple", "com.example.phone", encryptedPem);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pusher: PUSHER_ERR_BAD_CERTIFICATE: .*encrypted.*\n$/);
    expect(existsSync(join(dir, "pusher.json"))).toBe(false);
    expect(existsSync(join(dir, "credentials"))).toBe(false);
  });

  it("refuses a file that holds no PEM, and a key that does not belong to the certificate", () => {
    const garbage = join(dir, "garbage.pem");
    writeFileSync(
      garbage,
      "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n",
    );
    const unreadable = pusher("apps", "add-apple", "com.example.phone", garbage);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toContain("the certificate cannot be read");

    writeFileSync(garbage, "hello");
    expect(pusher("apps", "add-apple", "com.example.phone", garbage).stderr).toContain("no certificate found");

    const mismatch = pusher("apps", "add-apple", "com.example.phone", otherKeyPem);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain("does not belong to the certificate");
  });

  it("refuses an app id that could leave the credentials directory", () => {
    const result = pusher("apps", "add-apple", "../evil", goodPem);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("app id must be");
  });

  it("lists apps as JSON with provider, hosts (the sandbox host too) and no key material", () => {
    pusher("apps", "add-apple", "com.example.phone", goodPem);
    const result = pusher("apps", "list", "--json");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      {
        appId: "com.example.phone",
        provider: "apple",
        providers: ["apple"],
        enabled: true,
        host: "api.push.apple.com",
        sandboxHost: "api.sandbox.push.apple.com",
        certificateFile: join(dir, "credentials", "com.example.phone.apple.pem"),
      },
    ]);
    expect(pusher("apps", "list").stdout).toBe("com.example.phone\tapple\tapi.push.apple.com\n");
  });

  it("removes an app and the certificate copy it made, and says when there is no such app", () => {
    pusher("apps", "add-apple", "com.example.phone", goodPem);
    expect(pusher("apps", "remove", "com.example.phone").code).toBe(0);
    expect(configOnDisk()).toEqual({ apps: {} });
    expect(existsSync(join(dir, "credentials", "com.example.phone.apple.pem"))).toBe(false);

    const again = pusher("apps", "remove", "com.example.phone");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^pusher: PUSHER_ERR_NO_SUCH_APP: no app "com.example.phone"/);
  });
});

describe("pusher ua", () => {
  it("appends rules in order and replaces the regex of a rule with the same name in place", () => {
    expect(pusher("ua", "add", "Linphone", "^Linphone").code).toBe(0);
    expect(pusher("ua", "add", "Acme", "^AcmePhone/").code).toBe(0);
    expect(pusher("ua", "add", "Linphone", "^LinphoneiOS").code).toBe(0);
    expect(JSON.parse(pusher("ua", "list", "--json").stdout)).toEqual([
      { name: "Linphone", regex: "^LinphoneiOS" },
      { name: "Acme", regex: "^AcmePhone/" },
    ]);
    expect(pusher("ua", "list").stdout).toBe("Linphone\t^LinphoneiOS\nAcme\t^AcmePhone/\n");
  });

  it("removes a rule by name and keeps the order of the others", () => {
    for (const name of ["One", "Two", "Three"]) pusher("ua", "add", name, "^" + name);
    expect(pusher("ua", "remove", "Two").code).toBe(0);
    expect(configOnDisk().userAgents.map((rule: { name: string }) => rule.name)).toEqual(["One", "Three"]);
    expect(pusher("ua", "remove", "Two").code).toBe(1);
  });

  it("refuses an invalid regex naming the key and leaves the file unchanged", () => {
    pusher("ua", "add", "Good", "^Good");
    const before = readFileSync(join(dir, "pusher.json"), "utf8");
    const result = pusher("ua", "add", "Bad", "(unclosed");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^pusher: PUSHER_ERR_CONFIG: .*pusher\.json not changed: userAgents\[1\]\.regex: is not a valid regular expression/,
    );
    expect(readFileSync(join(dir, "pusher.json"), "utf8")).toBe(before);
  });

  it("accepts a regex that starts with a dash after --", () => {
    expect(pusher("ua", "add", "--", "Dash", "-dash").code).toBe(0);
    expect(configOnDisk().userAgents).toEqual([{ name: "Dash", regex: "-dash" }]);
  });
});

describe("the config file", () => {
  it("keeps the keys the user wrote and adds no defaults", () => {
    writeFileSync(join(dir, "pusher.json"), JSON.stringify({ timers: { pushWaitMs: 15000 } }));
    expect(pusher("ua", "add", "A", "^A").code).toBe(0);
    expect(configOnDisk()).toEqual({ timers: { pushWaitMs: 15000 }, userAgents: [{ name: "A", regex: "^A" }] });
  });

  it("refuses an unknown key in an existing pusher.json with exit 1 naming the key", () => {
    writeFileSync(join(dir, "pusher.json"), JSON.stringify({ timers: { pushWait: 15000 } }));
    const result = pusher("apps", "list");
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `pusher: PUSHER_ERR_CONFIG: ${join(dir, "pusher.json")}: timers.pushWait: unknown key\n`,
    );
  });

  it("names the file and the parse error when pusher.json is not JSON", () => {
    writeFileSync(join(dir, "pusher.json"), "{ nope");
    const result = pusher("ua", "list");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pusher: PUSHER_ERR_CONFIG_FILE: .*pusher\.json is not valid JSON: /);
  });

  it("uses PUSHER_CONFIG when --config is not given", () => {
    const path = join(dir, "from-env.json");
    const result = spawnSync(process.execPath, [cli, "ua", "add", "A", "^A"], {
      encoding: "utf8",
      env: { ...process.env, PUSHER_CONFIG: path },
    });
    expect(result.status).toBe(0);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ userAgents: [{ name: "A", regex: "^A" }] });
  });
});

describe("the command line", () => {
  it("exits 2 on an unknown command, option or a wrong number of arguments", () => {
    for (const args of [
      ["frobnicate"],
      ["apps", "list", "--verbose"],
      ["ua", "add", "OnlyName"],
      ["apps", "add-apple"],
      [],
    ]) {
      const result = pusher(...args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toMatch(/^pusher: PUSHER_ERR_USAGE: .*\(see pusher help\)\n$/);
    }
  });

  it("prints a failure as one line, pusher: <code>: <message>, the code one of docs/errors.md's", () => {
    writeFileSync(join(dir, "broken.json"), "{ nope");
    for (const [args, code] of [
      [["frobnicate"], "PUSHER_ERR_USAGE"],
      [["apps", "remove", "com.example.none"], "PUSHER_ERR_NO_SUCH_APP"],
      [["apps", "add-apple", "../evil", goodPem], "PUSHER_ERR_BAD_APP_ID"],
      [["--config", join(dir, "broken.json"), "ua", "list"], "PUSHER_ERR_CONFIG_FILE"],
    ] as const) {
      const result = spawnSync(
        process.execPath,
        [cli, ...(args[0] === "--config" ? [] : ["--config", join(dir, "pusher.json")]), ...args],
        {
          encoding: "utf8",
        },
      );
      expect(result.stderr, args.join(" ")).toMatch(new RegExp(`^pusher: ${code}: \\S.*\n$`));
      expect(Object.keys(ERROR_CODES)).toContain(code);
    }
  });

  it("prints the usage with the exit codes for help and --help", () => {
    for (const args of [["help"], ["--help"], ["apps", "-h"]]) {
      const result = pusher(...args);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain("Usage: pusher");
      expect(result.stdout).toContain("Exit codes: 0 success, 1 runtime or configuration error, 2 usage error.");
    }
  });

  it("start without the kamailio binary exits 1 at once, naming the packages and npm start", () => {
    // The built CLI (it finds kamailio/pusher.cfg from dist/), with a PATH that has no kamailio.
    const config = join(dir, "pusher.json");
    writeFileSync(config, JSON.stringify({ sip: { auth: false }, stateDir: join(dir, "state") }));
    const result = spawnSync(
      process.execPath,
      [join(import.meta.dirname, "..", "..", "dist", "cli.js"), "--config", config, "start"],
      {
        encoding: "utf8",
        env: { ...process.env, PATH: dir },
        // It used to hang forever after "stopping" (SIGTERM is its own stop signal).
        timeout: 10_000,
        killSignal: "SIGKILL",
      },
    );
    expect(result.signal).toBeNull(); // exited by itself, not killed at the timeout
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/kamailio is not installed .*kamailio-extra-modules.*npm start/);
  });

  it("refuses a malformed --listen for start before starting anything", () => {
    const result = pusher("start", "--listen", "udp:127.0.0.1:5060", "--listen", "sctp:1.2.3.4:5060");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pusher: PUSHER_ERR_CONFIG: --listen: must look like proto:ip:port/);
  });
});
