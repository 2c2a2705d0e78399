// The plugin in Duktape 2.7, the engine of Kamailio 5.6's app_jsdt, without Kamailio: `duk` loads dist/pusher.js
// alone (as app_jsdt loads it) and finds every entry point pusher.cfg runs; and the plugin's pure functions (no
// KSR), bundled from the same sources and lowered to ES5 as the plugin is, give in Duktape the answers the plugin
// relies on (regex syntax, decodeURIComponent, JSON and string methods are Duktape's own there). What the plugin
// does with Kamailio (routes, htable, the helper link) is tested against the real kamailio/pusher.cfg in
// test/integration and test/faults, never against a copy of its routes.
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const BUNDLE = join(ROOT, "dist", "pusher.js");
// app_jsdt 5.6 reads at most 128 KiB of a JS file and drops the rest.
const APP_JSDT_MAX_BYTES = 131072;

const PUSHER_CFG = readFileSync(join(ROOT, "kamailio", "pusher.cfg"), "utf8");
// Every function pusher.cfg runs (with or without parameters); the bundle must define each one as a global.
const CFG_ENTRY_POINTS = [...new Set([...PUSHER_CFG.matchAll(/jsdt_run\("([A-Za-z0-9_]+)"/g)].map((m) => m[1]))];

// Kazoo's sample Contact, verbatim: the pn-tok value holds a space.
const KAZOO_SEED_CONTACT =
  '<sip:user_1234567@192.168.1.1:61767;transport=TCP;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00004e05965e>";app-id=com.app.mymobileapp;pn-tok=34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw;pn-type=apple';
const SEED_TOKEN = "34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw";
const SEED_INSTANCE = "urn:uuid:00000000-0000-0000-0000-00004e05965e";

const USER_AGENTS = [
  { name: "zoiper", regex: "^Zoiper" },
  { name: "myapp", regex: "^MyApp/[0-9.]+ iOS" },
];
const CONFIG = {
  timers: { inviteFirstMs: 1500, pushWaitMs: 25000, afterWakeMs: 40000 },
  userAgents: USER_AGENTS,
  apps: {
    "com.app.mymobileapp": {
      apple: { certificateFile: "/etc/kamailio-pusher/credentials/mymobileapp.pem", callEndedVoipPush: true },
    },
  },
};

/**
 * The pure functions under test, as one ES module whose exports become the global PURE in Duktape. readContacts
 * reads a REGISTER's Contact value as register-before-save.ts does (repair first, then parse, instance, expiry and
 * push params of each contact).
 */
const PURE_FUNCTIONS = `
export { repairContact } from "./src/plugin/repair-contact";
export { withoutPushParams } from "./src/plugin/strip-push-params";
export { pickCallerId } from "./src/plugin/caller-id";
export { maskToken } from "./src/mask-token";
export { matchUserAgent } from "./src/plugin/user-agent-rules";
export { validateConfig } from "./src/config";
export { endpointAllowed } from "./src/webpush-endpoint";
export { utf8HexToText } from "./src/plugin/sip-text";
export { parseContacts } from "./src/plugin/parse-contact";
export { hmacSha256Hex } from "./src/hmac-sha256";
export { previewOf, sipDate, withoutTag } from "./src/plugin/message-content";
export { parseRefreshEntry, refreshPlanText } from "./src/plugin/refresh-plan";
import { repairContact } from "./src/plugin/repair-contact";
import { contactExpires, parseContacts } from "./src/plugin/parse-contact";
import { deviceInstance, readPushParams } from "./src/plugin/parse-push-params";
export function readContacts(value, expiresHeader) {
  return parseContacts(repairContact(value) || value).map((contact) => ({
    instance: deviceInstance(contact),
    expires: contactExpires(contact, expiresHeader),
    reading: readPushParams(contact),
  }));
}
`;

// Calls each case (`PURE[fn](...args)`) and prints {label: {value} | {error}} as one JSON line. Plain ES5.
const DRIVER = `
var results = {};
for (var i = 0; i < CASES.length; i++) {
  var c = CASES[i];
  try {
    var value = PURE[c.fn].apply(null, c.args);
    results[c.label] = { value: value === undefined ? null : value };
  } catch (e) {
    results[c.label] = { error: String(e && e.message || e) };
  }
}
print(JSON.stringify(results));
`;

interface Case {
  label: string;
  fn: string;
  args: unknown[];
}

type Result = { value: unknown } | { error: string };

/** The pure functions as one ES5 script for Duktape: esbuild bundles them, TypeScript lowers the bundle to ES5. */
async function pureFunctionsScript(): Promise<string> {
  const bundled = await build({
    stdin: { contents: PURE_FUNCTIONS, resolveDir: ROOT, sourcefile: "pure-functions.ts", loader: "ts" },
    bundle: true,
    format: "iife",
    globalName: "PURE",
    target: "es2015",
    write: false,
    logLevel: "silent",
  });
  const es5 = ts.transpileModule(bundled.outputFiles[0].text, {
    fileName: "pure-functions.js",
    compilerOptions: { target: ts.ScriptTarget.ES5, module: ts.ModuleKind.None },
  });
  return es5.outputText;
}

// Work that grows with a request stays linear in Duktape, where a string built with `+=` is copied whole at every
// step and an indexOf inside a loop scans a growing list. The inputs are far beyond the cfg's header limits
// (PUSHER_MAX_CONTACT_BYTES, PUSHER_MAX_HEADER_BYTES), sized so that the quadratic code this replaced needed
// minutes in duk on the 2-core test machine (utf8HexToText of 1.5 MB over 2 min, repairContact of 50 000 spaced
// words over 4 min, 100 000 duplicated params about 3 min) and the linear code about a second. The duk run's
// timeout (60 s) fails the test if one of them turns quadratic again: no time is measured or asserted.
const LINEAR_TIMEOUT_MS = 60_000;
const LINEAR_DRIVER = `
function repeated(text, count) {
  var parts = [];
  for (var i = 0; i < count; i++) parts.push(text);
  return parts.join("");
}
var decoded = PURE.utf8HexToText(repeated("c3a9", 500000) + repeated("ff", 1000000));
var spaced = PURE.repairContact("<sip:a@h>;pn-tok=a" + repeated(" b", 50000));
var params = [];
for (var i = 0; i < 100000; i++) params.push(";x" + i + "=1;x" + i + "=2");
var contact = PURE.parseContacts("<sip:a@h>" + params.join(""))[0];
print(JSON.stringify({
  decoded: { length: decoded.length, first: decoded.charCodeAt(0), last: decoded.charCodeAt(decoded.length - 1), replaced: decoded.split("\\ufffd").length - 1 },
  spaced: { length: spaced.length, spaces: spaced.split(" ").length - 1, encoded: spaced.split("%20").length - 1 },
  conflicts: { count: contact.conflicts.length, last: contact.conflicts[contact.conflicts.length - 1] }
}));
`;

let dir: string;
let results: { [label: string]: Result };
let entryPoints: { [name: string]: string };

const CASES: Case[] = [];
/** Registers a case and returns its label, to read its result with `resultOf`. */
function pure(label: string, fn: string, ...args: unknown[]): string {
  CASES.push({ label, fn, args });
  return label;
}

function resultOf(label: string): unknown {
  const result = results[label];
  expect(result, `case ${label} ran`).toBeDefined();
  expect(result, `case ${label} threw`).not.toHaveProperty("error");
  return (result as { value: unknown }).value;
}

function errorOf(label: string): string {
  const result = results[label];
  expect(result, `case ${label} threw`).toHaveProperty("error");
  return (result as { error: string }).error;
}

/**
 * The bundle under test is the one `npm test` builds before vitest starts. It is not rebuilt here: integration
 * tests running beside this file load dist/ into Kamailio, and must never see it half-written.
 */
function requireFreshBundle(): void {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run node build.mjs (npm test does)`);
  const sources = ["src/plugin", "src"].flatMap((folder) =>
    readdirSync(join(ROOT, folder))
      .filter((name) => name.endsWith(".ts"))
      .map((name) => join(ROOT, folder, name)),
  );
  const newest = Math.max(...sources.map((file) => statSync(file).mtimeMs));
  if (statSync(BUNDLE).mtimeMs < newest)
    throw new Error(`${BUNDLE} is older than the plugin sources: run node build.mjs`);
}

// The cases, registered before the one Duktape run in beforeAll.
const REPAIRED = pure("repair Kazoo's sample", "repairContact", KAZOO_SEED_CONTACT);
const UNFOLDED = pure("repair a folded Contact", "repairContact", "<sip:a@h>;pn-tok=ab cd\r\n\tX-Evil: 1");
const SEED = pure("read Kazoo's sample", "readContacts", KAZOO_SEED_CONTACT, "3600");
const EXPIRES = pure(
  "read expiries",
  "readContacts",
  "<sip:a@192.0.2.1>;expires=0;app-id=a;pn-tok=t;pn-type=apple, <sip:b@192.0.2.2>;expires=-1;app-id=a;pn-tok=u;pn-type=apple, <sip:c@192.0.2.3>",
  "600",
);
const CALLER = pure(
  "caller from P-Asserted-Identity",
  "pickCallerId",
  {
    "Remote-Party-ID": null,
    "P-Asserted-Identity": '"Bob \\\\ PAI" <sip:%2B15550002@example.com>',
    From: '"Bob From" <sip:+15550001@example.com>;tag=from-tag-1',
  },
  true,
);
const MASKED = pure("mask the seed token", "maskToken", SEED_TOKEN);
const MASKED_SHORT = pure("mask a 19-character token", "maskToken", "0123456789abcdefghi");
const UNKNOWN_UA = pure("no rule for Linphone", "matchUserAgent", USER_AGENTS, "Linphone/5.2");
const MYAPP_UA = pure("the myapp rule", "matchUserAgent", USER_AGENTS, "MyApp/2.1 iOS 17.2");
const GOOD_CONFIG = pure("a good config", "validateConfig", CONFIG);
const BAD_TIMER = pure("a timer out of range", "validateConfig", { ...CONFIG, timers: { pushWaitMs: 5 } });
// The CLI refuses such a rule up front; a hand-edited file is refused whole (the running config stays).
const LOOKBEHIND = pure("a lookbehind regex", "validateConfig", {
  userAgents: [{ name: "modern", regex: "(?<=Linphone)iOS" }, ...USER_AGENTS],
});
const WEBPUSH_HOSTS = ["*.push.services.mozilla.com"];
const LISTED_ENDPOINT = pure(
  "a listed push service",
  "endpointAllowed",
  "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
  WEBPUSH_HOSTS,
);
const INTERNAL_ENDPOINT = pure("an internal host", "endpointAllowed", "https://10.0.0.5:8443/admin", WEBPUSH_HOSTS);
// A MESSAGE's push preview and the delivered copy's headers (src/plugin/message-content.ts); a refresh plan.
const PREVIEW = pure("preview of a long text", "previewOf", "text/plain; charset=utf-8", "é".repeat(150));
const DATE = pure("a SIP-date", "sipDate", Date.UTC(2026, 0, 5, 7, 8, 9));
const TAGLESS = pure("a From without its tag", "withoutTag", '"Bob" <sip:15551234567@example.com>;tag=abc');
const REFRESH_PLAN = {
  aor: "alice@example.com",
  addr: "sip:c@127.0.0.2;pn-provider=fcm;pn-prid=a|b",
  instance: "urn:uuid:1",
  expiresIn: 600,
};
const REFRESH_ENTRY = pure("a refresh entry", "parseRefreshEntry", "1700000000|0|480|" + JSON.stringify(REFRESH_PLAN));

// A User-Agent rule's own param names (config.ts keeps them lower-case; the URI may not).
const RULE_PARAM_NAMES = ["x-app", "x-kind", "x-push-token"];
const TEAM_ID = "ABCDE12345";
const PUSHKIT_TOKEN = "1f".repeat(32);
// [case, a branch's R-URI (a Contact URI after lookup()), the R-URI without its push params]
const STRIPPED: [string, string, string][] = [
  [
    "RFC 8599 apns",
    `sip:c-1@127.0.0.2:5062;transport=tcp;pn-provider=apns;pn-prid=${PUSHKIT_TOKEN};pn-param=${TEAM_ID}.com.example.phone.voip;ob`,
    "sip:c-1@127.0.0.2:5062;transport=tcp;ob",
  ],
  [
    "Linphone's own pn- params and its two-token pn-prid",
    `sip:c-2@127.0.0.3:5064;pn-provider=apns.dev;pn-prid=aa:remote&bb:voip;pn-param=${TEAM_ID}.com.example.phone.remote&voip;pn-silent=1;pn-timeout=0;pn-msg-str=IM_MSG;pn-call-str=IC_MSG;pn-groupchat-str=GC_MSG;pn-call-snd=ring.caf;pn-msg-snd=msg.caf;ob`,
    "sip:c-2@127.0.0.3:5064;ob",
  ],
  [
    "RFC 8599 webpush",
    "sip:c-3@127.0.0.4;pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example.net%2Fx;app-id=web.example",
    "sip:c-3@127.0.0.4",
  ],
  [
    "Kazoo's default names and its one-time token",
    "sip:c-4@127.0.0.5:5066;app-id=com.app;pn-tok=abc;pn-type=apple;x-token-reg=0123abcd;transport=udp",
    "sip:c-4@127.0.0.5:5066;transport=udp",
  ],
  [
    "a User-Agent rule's names",
    "sip:c-5@127.0.0.6;X-App=com.acme;x-kind=firebase;X-Push-Token=tok;lr",
    "sip:c-5@127.0.0.6;lr",
  ],
  [
    "names in any case",
    "sip:c-6@127.0.0.7;PN-Provider=apns;Pn-Prid=ab;PN-PARAM=T.b;App-ID=a;PN-TOK=t;Pn-Type=apple;X-Token-Reg=1",
    "sip:c-6@127.0.0.7",
  ],
  [
    "other params kept in their order, valued or not",
    "sip:c-7@127.0.0.8:5068;transport=tcp;pn-prid=ab;ob;alias=127.0.0.9~5070~1;app-id=a;lr;user=phone;maddr=127.0.0.10;pn-param=T.b;nat=yes",
    "sip:c-7@127.0.0.8:5068;transport=tcp;ob;alias=127.0.0.9~5070~1;lr;user=phone;maddr=127.0.0.10;nat=yes",
  ],
  [
    "the headers part kept as it is",
    "sip:c-8@127.0.0.11;pn-prid=ab;transport=udp?Subject=pn-prid%3Dx&X-Other=1",
    "sip:c-8@127.0.0.11;transport=udp?Subject=pn-prid%3Dx&X-Other=1",
  ],
  [
    "only push params before the headers",
    "sip:c-9@127.0.0.12;pn-prid=ab;pn-provider=fcm?X-Other=1",
    "sip:c-9@127.0.0.12?X-Other=1",
  ],
  [
    "a user part with a `;` of its own",
    "sip:c;pn-x=1@127.0.0.19;transport=udp;pn-prid=ab",
    "sip:c;pn-x=1@127.0.0.19;transport=udp",
  ],
  // Nothing to remove: the R-URI comes back as it is.
  [
    "no push param",
    "sip:c-10@127.0.0.13:5072;transport=udp;ob;alias=127.0.0.14~5074~1",
    "sip:c-10@127.0.0.13:5072;transport=udp;ob;alias=127.0.0.14~5074~1",
  ],
  [
    "names that only look like push params",
    "sip:c-11@127.0.0.15;pnprid=1;xpn-tok=2;app=3;token=4;x-token=5",
    "sip:c-11@127.0.0.15;pnprid=1;xpn-tok=2;app=3;token=4;x-token=5",
  ],
  [
    "another rule's names, when no rule has them",
    "sip:c-12@127.0.0.16;x-app2=a;x-push=t",
    "sip:c-12@127.0.0.16;x-app2=a;x-push=t",
  ],
  ["no params", "sip:c-13@127.0.0.17:5076", "sip:c-13@127.0.0.17:5076"],
  ["headers only", "sips:c-14@127.0.0.18?X-Other=pn-prid%3D1", "sips:c-14@127.0.0.18?X-Other=pn-prid%3D1"],
];
for (const [label, uri] of STRIPPED) pure(`strip: ${label}`, "withoutPushParams", uri, RULE_PARAM_NAMES);
// [case, key, message]: the helper link's proofs (src/link-auth.ts), computed in Duktape, must be node:crypto's.
const HMACS: [string, string, string][] = [
  ["RFC 4231 test case 2", "Jefe", "what do ya want for nothing?"],
  ["a link proof", "f".repeat(64), "kamailio-pusher link v1 kamailio " + "0a".repeat(32) + " " + "b1".repeat(32)],
  [
    "a key longer than a block (hashed first)",
    "k".repeat(131),
    "Test Using Larger Than Block-Size Key - Hash Key First",
  ],
  ["an empty message", "x".repeat(32), ""],
  [
    "a message of 55, 56 and 64 bytes (padding edges)",
    "s".repeat(40),
    "m".repeat(55) + "|" + "m".repeat(56) + "|" + "m".repeat(64),
  ],
  ["non-ASCII key and message", "clé secrète ✓ 𝄞", "Grüße 🙂"],
];
for (const [label, key, message] of HMACS) pure(`hmac: ${label}`, "hmacSha256Hex", key, message);

beforeAll(async () => {
  requireFreshBundle();
  dir = mkdtempSync(join(tmpdir(), "pusher-duktape-"));
  // The bundle alone, then a line that reads what it defined.
  const probe = join(dir, "entry-points.js");
  writeFileSync(
    probe,
    `var names = ${JSON.stringify(CFG_ENTRY_POINTS)}, found = {};\nfor (var i = 0; i < names.length; i++) found[names[i]] = typeof this[names[i]];\nprint(JSON.stringify(found));\n`,
  );
  entryPoints = JSON.parse(
    execFileSync("duk", [BUNDLE, probe], { encoding: "utf8", timeout: 20000 }).trim().split("\n").pop()!,
  );

  const script = join(dir, "pure-functions.js");
  const driver = join(dir, "driver.js");
  writeFileSync(script, await pureFunctionsScript());
  writeFileSync(driver, `var CASES = ${JSON.stringify(CASES)};\n${DRIVER}`);
  results = JSON.parse(
    execFileSync("duk", [script, driver], { encoding: "utf8", timeout: 20000 }).trim().split("\n").pop()!,
  );
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("dist/pusher.js", () => {
  it("is smaller than the 128 KiB app_jsdt reads", () => {
    expect(statSync(BUNDLE).size).toBeLessThan(APP_JSDT_MAX_BYTES);
  });

  it("parses in Duktape 2.7 and defines every entry point pusher.cfg runs as a global function", () => {
    expect(CFG_ENTRY_POINTS).toEqual(
      expect.arrayContaining([
        "pusher_on_register",
        "pusher_on_invite",
        "pusher_on_helper_message",
        "pusher_on_register_failed",
      ]),
    );
    for (const name of CFG_ENTRY_POINTS) expect(entryPoints[name], name).toBe("function");
  });
});

describe("the plugin's pure functions in Duktape", () => {
  it("runs every case", () => {
    expect(Object.keys(results).sort()).toEqual(CASES.map((c) => c.label).sort());
  });

  it("percent-encodes the space in the token of Kazoo's sample Contact", () => {
    expect(resultOf(REPAIRED)).toBe(KAZOO_SEED_CONTACT.replace("byten yhtevtrw", "byten%20yhtevtrw"));
  });

  it("repairs a folded Contact into one line: no line of the phone's choosing reaches the header cfg writes", () => {
    expect(resultOf(UNFOLDED)).toBe("<sip:a@h>;pn-tok=ab%20cd%20X-Evil:%201");
  });

  it("reads Kazoo's sample device with its +sip.instance and the token as the phone sent it", () => {
    expect(resultOf(SEED)).toEqual([
      {
        instance: SEED_INSTANCE,
        expires: 3600,
        reading: {
          kind: "binding",
          binding: expect.objectContaining({
            instance: SEED_INSTANCE,
            appId: "com.app.mymobileapp",
            provider: "apple",
            token: SEED_TOKEN,
          }),
        },
      },
    ]);
  });

  it("takes each contact's expires param before the Expires header, and ignores one that is not a plain number", () => {
    expect((resultOf(EXPIRES) as { expires: number }[]).map((contact) => contact.expires)).toEqual([0, 600, 600]);
  });

  it("reads the caller from P-Asserted-Identity before From, unescaping the name and the number", () => {
    expect(resultOf(CALLER)).toEqual({ number: "+15550002", name: "Bob \\ PAI" });
  });

  it("masks a token to its first 6 and last 4 characters, and one under 20 characters to nothing", () => {
    expect(resultOf(MASKED)).toBe("34fret…vtrw");
    expect(resultOf(MASKED_SHORT)).toBe("…");
  });

  it("matches a User-Agent only to a rule whose regex fits it", () => {
    expect(resultOf(UNKNOWN_UA)).toBeNull();
    expect(resultOf(MYAPP_UA)).toMatchObject({ name: "myapp" });
  });

  it("accepts a good config, and refuses a bad one naming the key", () => {
    expect(resultOf(GOOD_CONFIG)).toMatchObject({
      timers: { pushWaitMs: 25000 },
      userAgents: [{ name: "zoiper" }, { name: "myapp" }],
    });
    expect(errorOf(BAD_TIMER)).toBe("timers.pushWaitMs: must be an integer from 1000 to 600000");
  });

  it("refuses a User-Agent rule whose regex uses syntax Duktape lacks, naming the key", () => {
    expect(errorOf(LOOKBEHIND)).toMatch(/userAgents\[0\]\.regex/);
  });

  it("allows a Web Push endpoint on a listed push service and no other host", () => {
    expect(resultOf(LISTED_ENDPOINT)).toBe(true);
    expect(resultOf(INTERNAL_ENDPOINT)).toBe(false);
  });

  it("previews a message by characters, and writes the delivered copy's Date and From", () => {
    expect(resultOf(PREVIEW)).toBe("é".repeat(100));
    expect(resultOf(DATE)).toBe("Mon, 05 Jan 2026 07:08:09 GMT");
    expect(resultOf(TAGLESS)).toBe('"Bob" <sip:15551234567@example.com>');
    expect(resultOf(REFRESH_ENTRY)).toEqual({ armedAt: 1700000000, plan: REFRESH_PLAN });
  });

  it.each(STRIPPED)("removes push params from an R-URI: %s", (label, _uri, expected) => {
    expect(resultOf(`strip: ${label}`)).toBe(expected);
  });

  it.each(HMACS)("computes HMAC-SHA-256 as node:crypto does: %s", (label, key, message) => {
    expect(resultOf(`hmac: ${label}`)).toBe(createHmac("sha256", key).update(message).digest("hex"));
  });

  it(
    "decodes, repairs and parses megabytes of header text in linear time (a quadratic step would time out)",
    () => {
      const driver = join(dir, "linear-driver.js");
      writeFileSync(driver, LINEAR_DRIVER);
      const output = execFileSync("duk", [join(dir, "pure-functions.js"), driver], {
        encoding: "utf8",
        timeout: LINEAR_TIMEOUT_MS,
      });
      expect(JSON.parse(output.trim().split("\n").pop()!)).toEqual({
        decoded: { length: 1_500_000, first: 0xe9, last: 0xfffd, replaced: 1_000_000 },
        spaced: { length: "<sip:a@h>;pn-tok=a".length + 50_000 * "%20b".length, spaces: 0, encoded: 50_000 },
        conflicts: { count: 100_000, last: "x99999" },
      });
    },
    LINEAR_TIMEOUT_MS + 10_000,
  );
});
