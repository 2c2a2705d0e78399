// scripts/ksr-calls.mjs: what build.mjs uses to fail the build when the plugin calls a KSR function that Kamailio
// 5.6 (the lowest supported) lacks, from the committed kamailio-jsdt-types files.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
// @ts-expect-error plain ES module without declarations (a build script, like build.mjs)
import { declaredKsrNames, ksrCallErrors, ksrCalls } from "../scripts/ksr-calls.mjs";

const dts = (name: string) => fileURLToPath(new URL(`../kamailio-jsdt-types/${name}`, import.meta.url));
const KSR_5_6 = {
  label: "Kamailio 5.6",
  file: "kamailio-jsdt-types/index.d.ts",
  names: declaredKsrNames(dts("index.d.ts")) as Set<string>,
};
const KSR_6_0 = {
  label: "Kamailio 6.0",
  file: "kamailio-jsdt-types/kamailio-6.0.d.ts",
  names: declaredKsrNames(dts("kamailio-6.0.d.ts")) as Set<string>,
};

describe("ksrCalls", () => {
  it("finds core and module functions, with their line, and nothing in comments or strings", () => {
    const source = [
      "// KSR.pv.getl in a comment",
      'KSR.info("x");',
      'var v = KSR.pv.get("$ru") + "KSR.tm.t_relay";',
      "KSR.x.modf('sl_send_reply', '200', 'OK');",
      "var pv = KSR.pv;",
    ].join("\n");
    expect(ksrCalls("a.ts", source).map((call: { name: string; line: number }) => [call.name, call.line])).toEqual([
      ["info", 2],
      ["pv.get", 3],
      ["x.modf", 4],
      ["pv", 5],
    ]);
  });
});

describe("declaredKsrNames", () => {
  it("reads core functions, modules, their functions and app_jsdt's own KSR.x", () => {
    for (const name of [
      "info",
      "is_INVITE",
      "pv",
      "pv.sets",
      "htable.sht_get",
      "tmx.t_suspend",
      "x",
      "x.modf",
      "x.exit",
    ])
      expect(KSR_5_6.names.has(name), name).toBe(true);
    expect(KSR_5_6.names.has("pv.getl")).toBe(false);
  });

  it("reads functions 6.0 added, pv.setl among them (its api_list names no param types)", () => {
    for (const name of ["pv.getl", "pv.setl", "tm.t_reply_error"]) expect(KSR_6_0.names.has(name), name).toBe(true);
  });
});

describe("ksrCallErrors", () => {
  it("refuses a function 5.6 lacks, at its line, saying which newer Kamailio has it", () => {
    const errors = ksrCallErrors(
      "src/plugin/x.ts",
      'KSR.info("a");\nvar r = KSR.tm.t_reply_error();\nKSR.nosuch.thing();\n',
      KSR_5_6,
      [KSR_6_0],
    );
    expect(errors).toEqual([
      {
        text: "KSR.tm.t_reply_error is not in Kamailio 5.6's app_jsdt (kamailio-jsdt-types/index.d.ts), only in Kamailio 6.0: the plugin must run on Kamailio 5.6, the lowest supported",
        location: { file: "src/plugin/x.ts", line: 2, column: 8, lineText: "var r = KSR.tm.t_reply_error();" },
      },
      {
        text: "KSR.nosuch.thing is not in Kamailio 5.6's app_jsdt (kamailio-jsdt-types/index.d.ts): the plugin must run on Kamailio 5.6, the lowest supported",
        location: { file: "src/plugin/x.ts", line: 3, column: 0, lineText: "KSR.nosuch.thing();" },
      },
    ]);
  });
});
