// kamailio/pusher.cfg read as text: its unchanged-REGISTER fast path agrees with the marks the plugin writes
// (src/plugin/register-marks.ts), and its routes are laid out as its header says (public hooks, event routes an
// operator can take over, deprecated names, PUSHER_INTERNAL_* for the rest). Kamailio itself runs it in
// test/integration.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FEATURE_CAPS_CODES, MARK_LENGTH, MAX_MARKS, markOf } from "../../src/plugin/register-marks";
import { parseRefreshEntry, refreshPlanText } from "../../src/plugin/refresh-plan";

const ROOT = join(import.meta.dirname, "..", "..");
const PUSHER_CFG = readFileSync(join(ROOT, "kamailio", "pusher.cfg"), "utf8");
const KAMAILIO_CFG = readFileSync(join(ROOT, "kamailio", "kamailio.cfg"), "utf8");
/** The comment block the file opens with. */
const HEADER = PUSHER_CFG.slice(0, PUSHER_CFG.indexOf("\n\n"));

function defineOf(name: string): number {
  const match = new RegExp(`^#!define ${name} (\\d+)$`, "m").exec(PUSHER_CFG);
  expect(match, `#!define ${name} in pusher.cfg`).not.toBeNull();
  return Number(match![1]);
}

/** The body of `<type>[<name>] { … }` (route blocks end at the first line that is a lone `}`). */
function blockOf(type: string, name: string): string {
  const start = PUSHER_CFG.indexOf(`\n${type}[${name}] {\n`);
  expect(start, `${type}[${name}] in pusher.cfg`).toBeGreaterThanOrEqual(0);
  return PUSHER_CFG.slice(start, PUSHER_CFG.indexOf("\n}\n", start));
}

/** Every `<type>[NAME]` block pusher.cfg defines. */
function blocks(type: string): string[] {
  return [...PUSHER_CFG.matchAll(new RegExp(`^${type}\\[([^\\]]+)\\] \\{`, "gm"))].map((match) => match[1]);
}

describe("the unchanged-REGISTER fast path", () => {
  const knownRegister = blockOf("route", "PUSHER_INTERNAL_KNOWN_REGISTER");

  it("reads marks of the length and number register-marks.ts writes", () => {
    expect(defineOf("PUSHER_MARK_LENGTH")).toBe(MARK_LENGTH);
    expect(defineOf("PUSHER_MARK_MAX")).toBe(MAX_MARKS);
  });

  it("computes keys of the length markOf accepts, followed by a one-character caps code and ';'", () => {
    const keyLength = defineOf("PUSHER_MARK_KEY_LENGTH");
    expect(keyLength + 2).toBe(MARK_LENGTH);
    expect(markOf("0".repeat(keyLength), "apns")).toBe(`${"0".repeat(keyLength)}a;`);
    expect(markOf("0".repeat(keyLength - 1), "apns")).toBe("");
    // The key and every offset come from the defines: no number of the mark layout is written out in the route.
    expect(knownRegister).toContain("{s.md5}{s.substr,0,$var(pusher_mark_key_length)}");
    expect(knownRegister).toContain("$var(pusher_mark_key_length) = PUSHER_MARK_KEY_LENGTH;");
    expect(knownRegister).not.toMatch(/s\.substr,\d+,\d+/);
  });

  it("adds the Feature-Caps of each caps code register-marks.ts writes, and none for the others", () => {
    const cfgCodes = new Map<string, string>();
    for (const match of knownRegister.matchAll(
      /\$var\(pusher_caps_code\) == "(.)"\) \{\s*append_to_reply\("Feature-Caps: \*;\+sip\.pns=\\"([^\\]+)\\"\\r\\n"\);/g,
    )) {
      cfgCodes.set(match[1], match[2]);
    }
    const withoutCaps = [...knownRegister.matchAll(/\$var\(pusher_caps_code\) != "(.)"\) \{\s*return;/g)].map(
      (match) => match[1],
    );
    const pluginCodes = new Map(
      Object.entries(FEATURE_CAPS_CODES)
        .filter(([pns]) => pns !== "")
        .map(([pns, code]) => [code, pns]),
    );
    expect(cfgCodes).toEqual(pluginCodes);
    expect(withoutCaps).toEqual([FEATURE_CAPS_CODES[""]]);
  });
});

describe("the refresh plans cfg arms without JavaScript", () => {
  const known = blockOf("route", "PUSHER_INTERNAL_KNOWN_REFRESH");
  const arm = blockOf("route", "PUSHER_INTERNAL_ARM_REFRESH");
  const plan = {
    aor: "alice@example.com",
    addr: "sip:c@127.0.0.2:5060;pn-provider=fcm;pn-prid=t|x",
    instance: "urn:uuid:1",
    expiresIn: 600,
  };

  it("reads the +sip.pnsreg value and the delay from the fields refresh-pushes.ts writes first", () => {
    const [pnsreg, pushIn] = refreshPlanText(130, 480, plan).split("|");
    expect([pnsreg, pushIn]).toEqual(["130", "480"]);
    expect(known).toContain("$(var(pusher_refresh_plan){s.select,0,|})");
    expect(arm).toContain("$TV(s) + $(var(pusher_refresh_plan){s.select,1,|}{s.int})");
  });

  it("arms entries the timer parses back: the time, then the plan as it was written", () => {
    expect(arm).toContain('pv_printf("$var(pusher_refresh_entry)", "$TV(s)|$var(pusher_refresh_plan)");');
    expect(parseRefreshEntry(`1700000000|${refreshPlanText(0, 480, plan)}`)).toEqual({ armedAt: 1700000000, plan });
    expect(parseRefreshEntry("1700000000|0|480")).toBeNull();
  });
});

describe("pusher.cfg's routes", () => {
  const headerRoutes = [...HEADER.matchAll(/route\((PUSHER_[A-Z_]+)\);/g)].map((match) => match[1]);
  const deprecated = [
    ...PUSHER_CFG.matchAll(/^# Deprecated: [^\n]*\nroute\[(PUSHER_[A-Z_]+)\] \{\n\troute\((PUSHER_[A-Z_]+)\);\n\}$/gm),
  ];

  it("lists every public route in the header, and names every other route PUSHER_INTERNAL_* or a deprecated alias", () => {
    const aliases = deprecated.map((match) => match[1]);
    for (const name of blocks("route")) {
      if (name.startsWith("PUSHER_INTERNAL_") || aliases.includes(name)) continue;
      expect(headerRoutes, `route[${name}] in pusher.cfg's header`).toContain(name);
    }
    for (const name of headerRoutes) expect(blocks("route"), `the header's route(${name})`).toContain(name);
  });

  it("names every failure, onreply and branch route PUSHER_INTERNAL_*", () => {
    const armed = [...blocks("failure_route"), ...blocks("onreply_route"), ...blocks("branch_route")];
    expect(armed.length).toBeGreaterThan(0);
    for (const name of armed) expect(name).toMatch(/^PUSHER_INTERNAL_/);
  });

  it("keeps each old hook name as an alias that only calls its new one, named in the header", () => {
    expect(Object.fromEntries(deprecated.map((match) => [match[1], match[2]]))).toEqual({
      PUSHER_REGISTER_DEVICES: "PUSHER_REGISTER_BEFORE_SAVE",
      PUSHER_REGISTER: "PUSHER_REGISTER_AFTER_SAVE",
      PUSHER_REGISTER_TOKEN: "PUSHER_REGISTER_BEFORE_AUTH",
      PUSHER_REGISTER_FAILED: "PUSHER_REGISTER_AFTER_ERROR",
      PUSHER_INVITE: "PUSHER_INVITE_BEFORE_LOOKUP",
      PUSHER_CANCEL: "PUSHER_CANCEL_BEFORE_RELAY",
      PUSHER_REPAIR_CONTACT: "PUSHER_INTERNAL_REPAIR_CONTACT",
    });
    for (const match of deprecated) expect(HEADER).toContain(match[1]);
  });

  it("defines each event route only without its PUSHER_SKIP_* switch, calling a public route the header names with it", () => {
    const eventRoutes = [
      ...PUSHER_CFG.matchAll(
        /^#!ifndef (PUSHER_SKIP_[A-Z_]+)\nevent_route\[([^\]]+)\] \{\n\troute\((PUSHER_[A-Z_]+)\);\n\}\n#!endif$/gm,
      ),
    ];
    expect(eventRoutes.map((match) => match[2]).sort()).toEqual(blocks("event_route").sort());
    expect(eventRoutes.map((match) => match[2]).sort()).toEqual([
      "core:worker-one-init",
      "evapi:connection-closed",
      "evapi:connection-new",
      "evapi:message-received",
      "htable:mod-init",
      "uac:reply",
    ]);
    for (const [, skip, event, route] of eventRoutes) {
      expect(HEADER).toMatch(new RegExp(`event_route\\[${event}\\]\\s+${skip}\\s+route\\(${route}\\);`));
    }
  });

  it("is wired into kamailio/kamailio.cfg by its public names only", () => {
    const called = [...KAMAILIO_CFG.matchAll(/route\((PUSHER_[A-Z_]+)\)/g)].map((match) => match[1]);
    expect(new Set(called)).toEqual(
      new Set([
        "PUSHER_CANCEL_BEFORE_RELAY",
        "PUSHER_REGISTER_BEFORE_AUTH",
        "PUSHER_REGISTER_BEFORE_SAVE",
        "PUSHER_REGISTER_AFTER_ERROR",
        "PUSHER_REGISTER_AFTER_SAVE",
        "PUSHER_INVITE_BEFORE_LOOKUP",
        "PUSHER_MESSAGE_BEFORE_LOOKUP",
        "PUSHER_STRIP_PUSH_PARAMS",
        "PUSHER_CLUSTER_MESSAGE",
      ]),
    );
  });
});
