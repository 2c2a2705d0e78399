// The documentation against the code and the repository. docs/configuration.md's configuration and knob tables
// (every knob documented once, in one table): every key validateConfig accepts is documented and every
// documented key is accepted; every PUSHER_* knob of the two cfg files has one row in the knob table and every
// row there is a knob. The README stays short (at most 20 KB) and opens with the two commands; every relative
// link in the README and docs/ resolves, and no file of the repository cites a document outside it. docs/errors.md
// shows every code of the error catalog (src/errors.ts) with its meaning and action, and no code the catalog lacks.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultConfig, validateConfig } from "../src/config";
import { ERROR_CODES, type ErrorCode } from "../src/errors";

const ROOT = join(import.meta.dirname, "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const CONFIGURATION = readFileSync(join(ROOT, "docs", "configuration.md"), "utf8");

/** First-column backticked names of the table in docs/configuration.md whose header starts with `| <header> |`. */
function tableNames(header: string): string[] {
  const start = CONFIGURATION.indexOf(`| ${header} |`);
  expect(start, `a table headed "${header}" in docs/configuration.md`).toBeGreaterThanOrEqual(0);
  const names: string[] = [];
  for (const line of CONFIGURATION.slice(start).split("\n").slice(2)) {
    if (!line.startsWith("|")) break;
    const first = line.split("|")[1];
    for (const match of first.matchAll(/`([^`]+)`/g)) names.push(match[1]);
  }
  return names;
}

/** Every optional key validateConfig knows, set once, so that walking the result reaches each leaf. */
const EVERY_OPTIONAL_KEY = {
  sip: { tls: { certificateFile: "c.pem", keyFile: "k.pem" } },
  userAgents: [
    {
      name: "r",
      regex: "^r",
      appIds: ["a"],
      properties: { appId: "a", type: "t", token: "k" },
      strategy: "parallel",
      timers: { pushWaitMs: 5000 },
    },
  ],
  apps: {
    cert: { enabled: true, apple: { certificateFile: "c.pem", host: "h", sandboxHost: "s", callEndedVoipPush: true } },
    token: { apple: { keyFile: "k.p8", keyId: "ABCDEFGHIJ", teamId: "ABCDEFGHIJ" } },
    android: { firebase: { serviceAccountFile: "s.json", host: "h", projectIds: ["acme-android"] } },
    web: { webpush: { vapidKeyFile: "v.pem", subject: "mailto:a@b.c", publicKey: "A".repeat(87) } },
  },
  kamailio: { defines: { PUSHER_X: 1 } },
  cluster: {
    nodeId: 1,
    nodes: 2,
    dmqListen: "10.0.0.1:5090",
    peers: ["10.0.0.2:5090"],
    database: "postgres://pusher:secret@db.example.com:5432/pusher",
  },
};

/** Leaf paths as docs/configuration.md writes them: `apps.<app-id>.apple.host`, `userAgents[].timers`, lists as leaves. */
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

describe("docs/configuration.md configuration table", () => {
  const documented = tableNames("Key").filter((name) => /^[a-z]/.test(name) && !name.includes(" "));
  const accepted = leafPaths(
    validateConfig({
      ...defaultConfig(),
      ...EVERY_OPTIONAL_KEY,
      sip: { ...defaultConfig().sip, ...EVERY_OPTIONAL_KEY.sip },
    }),
    "",
    new Set(),
  );

  it("documents every key the validator accepts", () => {
    for (const key of accepted) expect(documented, `a row for ${key}`).toContain(key);
  });

  it("documents no key the validator does not accept", () => {
    for (const key of documented) expect([...accepted], `validateConfig accepts ${key}`).toContain(key);
  });

  it("covers every key name config.ts checks (a new optional key needs a row, and a place in EVERY_OPTIONAL_KEY)", () => {
    const source = readFileSync(join(ROOT, "src", "config.ts"), "utf8");
    const names = new Set<string>();
    for (const call of source.matchAll(/checkKeys\([^,]+,\s*\[([^\]]*)\]/g))
      for (const name of call[1].matchAll(/"([^"]+)"/g)) names.add(name[1]);
    // A key of its own row, or a field its row's Type names (e.g. `{appId, type, token}`).
    const table = CONFIGURATION.slice(CONFIGURATION.indexOf("| Key |")).split("\n\n")[0];
    const words = new Set(table.match(/[A-Za-z]+/g));
    for (const name of names) expect(words.has(name), `the configuration table mentions ${name}`).toBe(true);
  });
});

describe("docs/configuration.md knob table", () => {
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
    for (const knob of knobs) expect(documented, `a row for ${knob}`).toContain(knob);
  });

  it("documents no knob the cfg files do not have", () => {
    for (const knob of documented) expect([...knobs], `a #!trydef/#!ifdef for ${knob}`).toContain(knob);
  });

  it("documents each knob in one row", () => {
    expect(documented.length).toBe(new Set(documented).size);
  });
});

describe("the README", () => {
  it("stays under 20 KB, with the reference material in docs/", () => {
    expect(Buffer.byteLength(README)).toBeLessThanOrEqual(20 * 1024);
    // Only docs/configuration.md has the tables: a knob or key documented twice would drift.
    expect(README).not.toContain("| Key |");
    expect(README).not.toContain("| Knob |");
  });

  it("opens with the two commands", () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(README)?.[1] ?? "";
    expect(README.indexOf("## Quick start")).toBeLessThan(README.indexOf("```sh"));
    expect(
      firstBlock
        .split("\n")
        .slice(0, 2)
        .map((line) => line.split(" ")[0] + " " + line.split(" ")[1]),
    ).toEqual(["npm start", "npm test"]);
  });
});

/** Every file under `dir` (relative to the repository) whose name ends in one of `extensions`. */
function filesUnder(dir: string, extensions: string[]): string[] {
  const found: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) found.push(...filesUnder(path, extensions));
    else if (extensions.some((extension) => name.endsWith(extension))) found.push(path);
  }
  return found;
}

const DOCUMENTS = ["README.md", ...filesUnder("docs", [".md"])];
/** What people write and read in this repository: sources, tests, benchmarks, scripts, cfg, units, docs. */
const REPOSITORY_TEXT = [
  ...DOCUMENTS,
  ...["src", "test", "bench", "scripts", "kamailio", "packaging"].flatMap((dir) =>
    filesUnder(dir, [".ts", ".mjs", ".sh", ".cfg", ".service", ".md"]),
  ),
];

describe("links and citations", () => {
  it("resolves every relative link of the README and docs/", () => {
    for (const document of DOCUMENTS) {
      const text = readFileSync(join(ROOT, document), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        expect(existsSync(join(ROOT, dirname(document), target)), `${document} links to ${target}`).toBe(true);
      }
    }
  });

  it("cites no document outside the repository", () => {
    const markdown = new Set(
      filesUnder(".", [".md"])
        .filter((path) => !path.startsWith("node_modules"))
        .map((path) => path.split("/").pop()),
    );
    for (const file of REPOSITORY_TEXT) {
      const text = readFileSync(join(ROOT, file), "utf8");
      expect(text, `${file} names a path outside the repository`).not.toMatch(/\/work\/|shared\/reference/);
      for (const [name] of text.matchAll(/\b[\w-]+\.md\b/g)) {
        expect(
          markdown.has(name),
          `${relative(ROOT, join(ROOT, file))} cites ${name}, which is not in the repository`,
        ).toBe(true);
      }
    }
  });
});

describe("docs/errors.md", () => {
  const errors = readFileSync(join(ROOT, "docs", "errors.md"), "utf8");
  /** The table row of a code as docs/errors.md must write it: a `|` inside a cell is escaped. */
  const row = (code: ErrorCode) => {
    const cell = (text: string) => text.replace(/\|/g, "\\|");
    return `| \`${code}\` | ${cell(ERROR_CODES[code].meaning)} | ${cell(ERROR_CODES[code].action)} |`;
  };

  it("shows every code of the catalog with its meaning and what to do, as src/errors.ts words them", () => {
    const lines = new Set(errors.split("\n"));
    const missing = (Object.keys(ERROR_CODES) as ErrorCode[]).map(row).filter((expected) => !lines.has(expected));
    expect(missing, "rows docs/errors.md lacks or words otherwise (copy them from here)").toEqual([]);
  });

  it("shows no code the catalog lacks, and each once", () => {
    const documented = [...errors.matchAll(/^\| `(PUSHER_ERR_[A-Z0-9_]+)` \|/gm)].map((match) => match[1]);
    expect(documented.filter((code) => !(code in ERROR_CODES))).toEqual([]);
    expect(documented.filter((code, index) => documented.indexOf(code) !== index)).toEqual([]);
  });
});
