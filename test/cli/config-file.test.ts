import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { defaultConfig } from "../../src/config";
import { loadConfig, resolveConfigPath, saveConfig } from "../../src/cli/config-file";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "pusher-config-file-test-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("resolveConfigPath", () => {
  it("prefers --config, then PUSHER_CONFIG, then ./pusher.json, always absolute", () => {
    expect(resolveConfigPath("a.json", { PUSHER_CONFIG: "/etc/b.json" })).toBe(resolve("a.json"));
    expect(resolveConfigPath(undefined, { PUSHER_CONFIG: "/etc/b.json" })).toBe("/etc/b.json");
    expect(resolveConfigPath(undefined, {})).toBe(resolve("pusher.json"));
  });
});

describe("loadConfig", () => {
  it("returns the defaults and exists: false when the file is missing", () => {
    const loaded = loadConfig(join(dir, "pusher.json"));
    expect(loaded).toEqual({ path: join(dir, "pusher.json"), exists: false, raw: {}, config: defaultConfig() });
  });

  it("returns the raw object next to the validated config", () => {
    writeFileSync(join(dir, "pusher.json"), JSON.stringify({ log: { level: "debug" } }));
    const loaded = loadConfig(join(dir, "pusher.json"));
    expect(loaded.exists).toBe(true);
    expect(loaded.raw).toEqual({ log: { level: "debug" } });
    expect(loaded.config.log.level).toBe("debug");
    expect(loaded.config.timers.pushWaitMs).toBe(20000);
  });

  it("throws PUSHER_ERR_CONFIG naming the file and the key", () => {
    writeFileSync(join(dir, "pusher.json"), JSON.stringify({ link: { port: 0 } }));
    expect(() => loadConfig(join(dir, "pusher.json"))).toThrow(
      expect.objectContaining({
        code: "PUSHER_ERR_CONFIG",
        key: "link.port",
        message: `${join(dir, "pusher.json")}: link.port: must be an integer from 1 to 65535`,
      }),
    );
  });
});

describe("saveConfig", () => {
  it("writes 2-space JSON with mode 0600 and leaves no temporary file", () => {
    const path = join(dir, "sub", "pusher.json");
    saveConfig(path, { stateDir: "/var/lib/pusher" });
    expect(readFileSync(path, "utf8")).toBe('{\n  "stateDir": "/var/lib/pusher"\n}\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, "sub"))).toEqual(["pusher.json"]);
  });

  it("refuses to write an invalid config and keeps the old file", () => {
    const path = join(dir, "pusher.json");
    writeFileSync(path, "{}\n");
    expect(() => saveConfig(path, { sip: { listen: [] } })).toThrow(
      `${path} not changed: sip.listen: must be a non-empty list`,
    );
    expect(readFileSync(path, "utf8")).toBe("{}\n");
  });
});
