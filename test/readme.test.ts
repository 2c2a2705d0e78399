// The README's configuration and knob tables against the code (STYLE.md rule 10): every key validateConfig
// accepts is documented and every documented key is accepted; every PUSHER_* knob of the two cfg files is in
// the knob table and every row there is a knob.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultConfig, validateConfig } from "../src/config";

const ROOT = join(import.meta.dirname, "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** First-column backticked names of the table whose header starts with `| <header> |`. */
function tableNames(header: string): string[] {
  const start = README.indexOf(`| ${header} |`);
  expect(start, `a table headed "${header}" in README.md`).toBeGreaterThanOrEqual(0);
  const names: string[] = [];
  for (const line of README.slice(start).split("\n").slice(2)) {
    if (!line.startsWith("|")) break;
    const first = line.split("|")[1];
    for (const match of first.matchAll(/`([^`]+)`/g)) names.push(match[1]);
  }
  return names;
}

/** Every optional key validateConfig knows, set once, so that walking the result reaches each leaf. */
const EVERY_OPTIONAL_KEY = {
  sip: { tls: { certificateFile: "c.pem", keyFile: "k.pem" } },
  userAgents: [{ name: "r", regex: "^r", appIds: ["a"], properties: { appId: "a", type: "t", token: "k" }, strategy: "parallel", timers: { pushWaitMs: 5000 } }],
  apps: {
    cert: { enabled: true, apple: { certificateFile: "c.pem", host: "h", sandboxHost: "s", callEndedVoipPush: true } },
    token: { apple: { keyFile: "k.p8", keyId: "ABCDEFGHIJ", teamId: "ABCDEFGHIJ" } },
    android: { firebase: { serviceAccountFile: "s.json", host: "h" } },
    web: { webpush: { vapidKeyFile: "v.pem", subject: "mailto:a@b.c", publicKey: "A".repeat(87) } },
  },
  kamailio: { defines: { PUSHER_X: 1 } },
};

/** Leaf paths as the README writes them: `apps.<app-id>.apple.host`, `userAgents[].timers`, lists as leaves. */
function leafPaths(value: unknown, path: string, out: Set<string>): Set<string> {
  if (path === "userAgents") out.add("userAgents");
  if (path === "kamailio.defines" || path.endsWith("].timers") || path.endsWith("].properties")) {
    out.add(path);
    return out;
  }
  if (value instanceof Array) {
    if (value.length && typeof value[0] === "object") for (const item of value) leafPaths(item, `${path}[]`, out);
    else out.add(path);
    return out;
  }
  if (value && typeof value === "object") {
    for (const [key, child] of Object.entries(value)) {
      const name = path === "apps" ? "<app-id>" : key;
      leafPaths(child, path ? `${path}.${name}` : name, out);
    }
    return out;
  }
  out.add(path);
  return out;
}

describe("README configuration table", () => {
  const documented = tableNames("Key").filter((name) => /^[a-z]/.test(name) && !name.includes(" "));
  const accepted = leafPaths(validateConfig({ ...defaultConfig(), ...EVERY_OPTIONAL_KEY, sip: { ...defaultConfig().sip, ...EVERY_OPTIONAL_KEY.sip } }), "", new Set());

  it("documents every key the validator accepts", () => {
    for (const key of accepted) expect(documented, `README row for ${key}`).toContain(key);
  });

  it("documents no key the validator does not accept", () => {
    for (const key of documented) expect([...accepted], `validateConfig accepts ${key}`).toContain(key);
  });

  it("covers every key name config.ts checks (a new optional key needs a row, and a place in EVERY_OPTIONAL_KEY)", () => {
    const source = readFileSync(join(ROOT, "src", "config.ts"), "utf8");
    const names = new Set<string>();
    for (const call of source.matchAll(/checkKeys\([^,]+,\s*\[([^\]]*)\]/g)) for (const name of call[1].matchAll(/"([^"]+)"/g)) names.add(name[1]);
    // A key of its own row, or a field its row's Type names (e.g. `{appId, type, token}`).
    const table = README.slice(README.indexOf("| Key |")).split("\n\n")[0];
    const words = new Set(table.match(/[A-Za-z]+/g));
    for (const name of names) expect(words.has(name), `the configuration table mentions ${name}`).toBe(true);
  });
});

describe("README knob table", () => {
  const knobs = new Set<string>();
  for (const file of ["pusher.cfg", "kamailio.cfg"]) {
    const cfg = readFileSync(join(ROOT, "kamailio", file), "utf8");
    for (const match of cfg.matchAll(/^#!(?:trydef|ifdef|ifndef)\s+(PUSHER_[A-Z0-9_]+)/gm)) knobs.add(match[1]);
  }
  const documented = tableNames("Knob").filter((name) => name.startsWith("PUSHER_"));

  it("finds the knobs", () => {
    expect(knobs.size).toBeGreaterThan(5);
  });

  it("documents every PUSHER_* knob of kamailio/pusher.cfg and kamailio/kamailio.cfg", () => {
    for (const knob of knobs) expect(documented, `README row for ${knob}`).toContain(knob);
  });

  it("documents no knob the cfg files do not have", () => {
    for (const knob of documented) expect([...knobs], `a #!trydef/#!ifdef for ${knob}`).toContain(knob);
  });
});
