// Proves dist/pusher.js parses and runs under Duktape 2.7 (the engine of Kamailio 5.6's app_jsdt) without
// Kamailio: `duk` runs a stub KSR (plain ES5, in-memory htable/pv/headers), then the bundle as its own program
// (as app_jsdt loads it), then a driver that calls the entry points the way kamailio/pusher.cfg does, and prints
// a JSON summary that the tests read.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kamailioStatsKeys } from "../../src/kamailio-stats";

const ROOT = join(import.meta.dirname, "..", "..");
const BUNDLE = join(ROOT, "dist", "pusher.js");
// app_jsdt 5.6 reads at most 128 KiB of a JS file and drops the rest.
const APP_JSDT_MAX_BYTES = 131072;

// Kazoo's sample Contact, verbatim: the pn-tok value holds a space.
const KAZOO_SEED_CONTACT =
  '<sip:user_1234567@192.168.1.1:61767;transport=TCP;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00004e05965e>";app-id=com.app.mymobileapp;pn-tok=34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw;pn-type=apple';
const SEED_TOKEN = "34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw";
const SEED_INSTANCE = "urn:uuid:00000000-0000-0000-0000-00004e05965e";
const AOR = "user_1234567@example.com";
const CONFIG_FILE = "/etc/kamailio-pusher/pusher.json";

const CONFIG = {
  timers: { inviteFirstMs: 1500, pushWaitMs: 25000, afterWakeMs: 40000 },
  userAgents: [
    { name: "zoiper", regex: "^Zoiper" },
    { name: "myapp", regex: "^MyApp/[0-9.]+ iOS" },
  ],
  // Kazoo's sample registers a PushKit token only: its app reports a call-ended VoIP push to CallKit and ends it.
  apps: { "com.app.mymobileapp": { apple: { certificateFile: "/etc/kamailio-pusher/credentials/mymobileapp.pem", callEndedVoipPush: true } } },
};

const PUSHER_CFG = readFileSync(join(ROOT, "kamailio", "pusher.cfg"), "utf8");
// Every function pusher.cfg runs; the bundle must define each one as a global.
const CFG_ENTRY_POINTS = [...new Set([...PUSHER_CFG.matchAll(/jsdt_run\("([A-Za-z0-9_]+)"\)/g)].map((m) => m[1]))];
// The htables pusher.cfg defines: the stub has these and no others, as Kamailio would.
const CFG_HTABLES = [...PUSHER_CFG.matchAll(/^modparam\("htable",\s*"htable",\s*"([A-Za-z0-9_]+)=>/gm)].map((m) => m[1]);

// The stub KSR, in plain ES5 (Duktape has no console: print() writes stdout). $var lives as long as the process
// (as in Kamailio); $avp and the request's PVs belong to one message. Every PV write of a step is recorded.
// A KSR function the stub does not implement answers -1 (Kamailio's "failed") through a Proxy (Duktape 2.7 has
// ES2015 Proxy), and is listed in the summary's `unstubbed`: the plugin must survive a module call failing.
const STUB_KSR = String.raw`
var STATE = {
  tables: {},
  tableErrors: [],
  lockDepth: {},
  lockErrors: [],
  vars: {},
  avps: {},
  written: {},
  request: {},
  headers: {},
  registered: -1,
  registeredLookups: [],
  newtran: 1,
  appendResult: 1,
  appended: [],
  relayed: [],
  continued: [],
  suspended: [],
  files: {},
  logs: [],
  typeErrors: [],
  unstubbed: [],
  replyHeaders: [],
  replies: [],
  sql: [],
  forwardNoConnect: 0
};
function own(object, key) { return Object.prototype.hasOwnProperty.call(object, key); }
for (var t = 0; t < SCENARIO.htables.length; t++) STATE.tables[SCENARIO.htables[t]] = {};
/** The items of a table pusher.cfg defines; for any other Kamailio logs an error and fails: null here. */
function table(name) {
  if (own(STATE.tables, name)) return STATE.tables[name];
  if (STATE.tableErrors.indexOf(name) < 0) STATE.tableErrors.push(name);
  return null;
}
/** A header's value; a header given as a list has one value per Contact (etc.) header line. */
function headerAt(name, index) {
  for (var key in STATE.headers) {
    if (!own(STATE.headers, key) || key.toLowerCase() !== String(name).toLowerCase()) continue;
    var values = STATE.headers[key] instanceof Array ? STATE.headers[key] : [STATE.headers[key]];
    return index < values.length ? values[index] : null;
  }
  return null;
}
// The request's PVs a script may write (the R-URI and its parts, the destination URI).
var WRITABLE_REQUEST_PVS = ["$ru", "$rU", "$rd", "$du"];
function pvStore(name) {
  if (/^\$var\(/.test(name)) return STATE.vars;
  if (/^\$avp\(/.test(name)) return STATE.avps;
  if (WRITABLE_REQUEST_PVS.indexOf(name) >= 0) return STATE.request;
  STATE.typeErrors.push("write to the read-only PV " + name);
  return {};
}
function log(level) { return function (message) { STATE.logs.push({ level: level, message: String(message) }); }; }
var KSR_MODULES = {
  htable: {
    sht_get: function (t, k) { var items = table(t); return items && own(items, k) ? items[k] : null; },
    sht_sets: function (t, k, v) {
      if (typeof v !== "string") STATE.typeErrors.push("sht_sets " + t + "=>" + k + " got " + typeof v);
      var items = table(t);
      if (!items) return -1;
      items[k] = String(v); return 1;
    },
    sht_seti: function (t, k, v) {
      if (typeof v !== "number" || Math.floor(v) !== v) STATE.typeErrors.push("sht_seti " + t + "=>" + k + " got " + v);
      var items = table(t);
      if (!items) return -1;
      items[k] = v; return 1;
    },
    sht_rm: function (t, k) { var items = table(t); if (!items) return -1; delete items[k]; return 1; },
    // htable's sht_inc: an absent item counts from 0; the new value is returned.
    sht_inc: function (t, k) { var items = table(t); if (!items) return -1; items[k] = (own(items, k) ? Number(items[k]) : 0) + 1; return items[k]; },
    sht_lock: function (t, k) { var key = t + "=>" + k; STATE.lockDepth[key] = (STATE.lockDepth[key] || 0) + 1; return 1; },
    sht_unlock: function (t, k) {
      var key = t + "=>" + k;
      if (!STATE.lockDepth[key]) STATE.lockErrors.push("unlock without lock: " + key);
      else if (--STATE.lockDepth[key] === 0) delete STATE.lockDepth[key];
      return 1;
    }
  },
  pv: {
    get: function (name) {
      // $(hdr(Name){s.encode.hexa}): what headerText reads caller ids with (UTF-8 bytes as hex, like Kamailio).
      var hexa = /^\$\(hdr\(([^)]+)\)\{s\.encode\.hexa\}\)$/.exec(name);
      if (hexa) {
        var text = headerAt(hexa[1], 0);
        if (text === null) return null;
        var bytes = new TextEncoder().encode(text), hex = "";
        for (var b = 0; b < bytes.length; b++) hex += (bytes[b] < 16 ? "0" : "") + bytes[b].toString(16);
        return hex;
      }
      if (/^\$var\(/.test(name)) return own(STATE.vars, name) ? STATE.vars[name] : null;
      if (/^\$avp\(/.test(name)) return own(STATE.avps, name) ? STATE.avps[name] : null;
      return own(STATE.request, name) ? STATE.request[name] : null;
    },
    sets: function (name, value) {
      if (typeof value !== "string") STATE.typeErrors.push("pv.sets " + name + " got " + typeof value);
      pvStore(name)[name] = STATE.written[name] = String(value); return true;
    },
    seti: function (name, value) {
      if (typeof value !== "number" || Math.floor(value) !== value) STATE.typeErrors.push("pv.seti " + name + " got " + value);
      pvStore(name)[name] = STATE.written[name] = value; return true;
    }
  },
  hdr: {
    get: function (name) { return headerAt(name, 0); },
    is_present: function (name) { return headerAt(name, 0) === null ? -1 : 1; },
    get_idx: function (name, index) { return headerAt(name, index); },
    append_to_reply: function (text) { STATE.replyHeaders.push(text); return 1; }
  },
  sqlops: {
    // An empty database that accepts every write: the device records live in htable for this test.
    sql_query: function (connection, query, result) { STATE.sql.push({ connection: connection, query: query }); return 1; },
    sql_num_rows: function () { return 0; },
    sql_result_get: function () { return null; },
    sql_result_free: function () { return 1; }
  },
  registrar: {
    registered: function (t) { STATE.registeredLookups.push({ table: t }); return STATE.registered; },
    registered_uri: function (t, uri) { STATE.registeredLookups.push({ table: t, uri: uri }); return STATE.registered; }
  },
  tm: { t_newtran: function () { return STATE.newtran; } },
  tsilo: {
    ts_append_to_uri: function (tindex, tlabel, t, uri) {
      STATE.appended.push({ tindex: tindex, tlabel: tlabel, table: t, uri: uri });
      return STATE.appendResult;
    }
  },
  evapi: { relay: function (message) { STATE.relayed.push(message); return 1; } },
  corex: { file_read: function (path) { return own(STATE.files, path) ? STATE.files[path] : null; } }
};
var KSR_FUNCTIONS = {
  info: log("info"), warn: log("warn"), err: log("err"), dbg: log("dbg"),
  // Core: the message's branches may not open a connection (counted per step).
  set_forward_no_connect: function () { STATE.forwardNoConnect++; return 1; }
};
function unstubbed(path) {
  return function () {
    if (STATE.unstubbed.indexOf(path) < 0) STATE.unstubbed.push(path);
    return -1;
  };
}
function moduleWithFallback(name, module) {
  return new Proxy(module, {
    get: function (target, fn) {
      if (own(target, fn)) return target[fn];
      return typeof fn === "string" ? unstubbed(name + "." + fn) : undefined;
    }
  });
}
var KSR = new Proxy({}, {
  get: function (target, name) {
    if (own(KSR_FUNCTIONS, name)) return KSR_FUNCTIONS[name];
    return moduleWithFallback(String(name), own(KSR_MODULES, name) ? KSR_MODULES[name] : {});
  }
});
`;

// Plays kamailio/pusher.cfg's routes against the stub, one step per SIP message, reply or evapi event.
const DRIVER = String.raw`
var GLOBAL = new Function("return this")();
var summary = { steps: {}, order: [], startedAtMs: Date.now(), entryPoints: {} };
for (var e = 0; e < SCENARIO.entryPoints.length; e++) summary.entryPoints[SCENARIO.entryPoints[e]] = typeof GLOBAL[SCENARIO.entryPoints[e]];

function pv(name) { return KSR.pv.get(name); }
function jsdtRun(name) {
  if (typeof GLOBAL[name] !== "function") throw new Error("no global function " + name);
  GLOBAL[name]();
}
function copy(value) { return JSON.parse(JSON.stringify(value)); }
function parseItems(items) {
  var out = {};
  for (var key in items) {
    if (!own(items, key)) continue;
    try { out[key] = typeof items[key] === "string" ? JSON.parse(items[key]) : items[key]; } catch (e) { out[key] = items[key]; }
  }
  return out;
}

/** A new SIP message in a new transaction: its own PVs, headers and $avps. */
function message(request, headers) {
  STATE.request = request || {};
  STATE.headers = headers || {};
  STATE.avps = {};
}

function routeRepairContact() {
  var contact = KSR.hdr.get("Contact");
  if (contact === null || !/=[^;," <>]+[ \t]+[^;, \t]/.test(contact)) return;
  jsdtRun("pusher_repair_contact");
  var repaired = pv("$var(pusher_contact)");
  if (repaired !== "" && repaired !== null) STATE.headers.Contact = repaired;
}
/** route PUSHER_REGISTER_DEVICES, right before save("location"); false when the REGISTER is refused (555). */
function routeRegisterDevices() {
  routeRepairContact();
  jsdtRun("pusher_register_devices");
  if (pv("$var(pusher_refuse)") === 1) {
    STATE.replies.push(555);
    return false;
  }
  return true;
}
function routeRegister() {
  jsdtRun("pusher_on_register");
  var guard = 0;
  while (pv("$var(pusher_resume)") === 1) {
    if (++guard > 20) throw new Error("pusher_resume never went back to 0");
    STATE.continued.push({ tindex: pv("$var(pusher_tindex)"), tlabel: pv("$var(pusher_tlabel)"), route: "PUSHER_DELIVER" });
    jsdtRun("pusher_next_held_call");
  }
}
function routeHold() {
  STATE.suspended.push({ tindex: pv("$T(id_index)"), tlabel: pv("$T(id_label)"), waitMs: pv("$var(pusher_wait_ms)"),
    provisionalCode: pv("$var(pusher_provisional_code)"), provisionalReason: pv("$var(pusher_provisional_reason)") });
  jsdtRun("pusher_send_pushes");
}
function routeInvite() {
  jsdtRun("pusher_on_invite");
  if (pv("$var(pusher_action)") === "hold") routeHold();
}
function failureRouteInviteFirstFailed() {
  jsdtRun("pusher_on_invite_first_failed");
  if (pv("$var(pusher_action)") === "hold") routeHold();
}
/** route PUSHER_STRIP_PUSH_PARAMS, from a branch_route: $ru is the branch's (a Contact URI after lookup()). */
function routeStripPushParams() {
  if (/;/.test(pv("$ru") || "")) jsdtRun("pusher_strip_push_params");
}
/** The same transaction's request with the given PVs changed (lookup() wrote a Contact into $ru, $rU, $rd). */
function rewrite(request) {
  for (var name in request || {}) if (own(request, name)) STATE.request[name] = request[name];
}
function routeCancel() {
  jsdtRun("pusher_on_cancel");
  if (pv("$var(pusher_cancel)") === 1) {
    STATE.continued.push({ tindex: pv("$var(pusher_tindex)"), tlabel: pv("$var(pusher_tlabel)"), route: "PUSHER_CANCELLED" });
  }
}
function evapiMessageReceived(text) {
  message({ "$evapi(msg)": text }, {});
  jsdtRun("pusher_on_helper_message");
  if (pv("$var(pusher_fail)") === 1) {
    STATE.continued.push({ tindex: pv("$var(pusher_tindex)"), tlabel: pv("$var(pusher_tlabel)"), route: "PUSHER_PUSH_FAILED" });
  }
}

function step(label, body) {
  var marks = { relayed: STATE.relayed.length, continued: STATE.continued.length, suspended: STATE.suspended.length,
    appended: STATE.appended.length, logs: STATE.logs.length, replies: STATE.replies.length,
    replyHeaders: STATE.replyHeaders.length, sql: STATE.sql.length, forwardNoConnect: STATE.forwardNoConnect };
  STATE.written = {};
  var error = null;
  try { body(); } catch (e) { error = String(e && e.stack || e); }
  var relayed = STATE.relayed.slice(marks.relayed);
  for (var i = 0; i < relayed.length; i++) { try { relayed[i] = JSON.parse(relayed[i]); } catch (e) { relayed[i] = { unparsable: relayed[i] }; } }
  summary.order.push(label);
  summary.steps[label] = {
    error: error,
    written: copy(STATE.written),
    headers: copy(STATE.headers),
    devices: parseItems(STATE.tables.pusher_devices),
    calls: parseItems(STATE.tables.pusher_calls),
    relayed: relayed,
    continued: STATE.continued.slice(marks.continued),
    suspended: STATE.suspended.slice(marks.suspended),
    appended: STATE.appended.slice(marks.appended),
    replies: STATE.replies.slice(marks.replies),
    replyHeaders: STATE.replyHeaders.slice(marks.replyHeaders),
    sql: STATE.sql.slice(marks.sql),
    logs: STATE.logs.slice(marks.logs),
    forwardNoConnect: STATE.forwardNoConnect - marks.forwardNoConnect,
    ruri: own(STATE.request, "$ru") ? STATE.request["$ru"] : null
  };
}

STATE.files[SCENARIO.configFile] = SCENARIO.configText;
KSR.htable.sht_sets("pusher_state", "config_file", SCENARIO.configFile);
KSR.htable.sht_seti("pusher_state", "config_generation", 1);
KSR.htable.sht_seti("pusher_state", "helper_connections", 1);

for (var s = 0; s < SCENARIO.steps.length; s++) {
  (function (spec) {
    step(spec.label, function () {
      if (spec.registered !== undefined) STATE.registered = spec.registered;
      if (spec.appendResult !== undefined) STATE.appendResult = spec.appendResult;
      if (spec.helperConnections !== undefined) KSR.htable.sht_seti("pusher_state", "helper_connections", spec.helperConnections);
      if (spec.kind === "register") {
        message(spec.request, spec.headers);
        if (routeRegisterDevices()) routeRegister(); // save("location") in between
      } else if (spec.kind === "worker-init") {
        jsdtRun("pusher_load_devices");
      } else if (spec.kind === "invite") {
        message(spec.request, spec.headers);
        routeInvite();
      } else if (spec.kind === "invite-first-failed") {
        rewrite(spec.request); // same transaction: the INVITE's $avps stay, its R-URI is lookup()'s Contact
        failureRouteInviteFirstFailed();
      } else if (spec.kind === "branch") {
        rewrite(spec.request);
        routeStripPushParams();
      } else if (spec.kind === "answered") {
        message(spec.request, {});
        jsdtRun("pusher_on_answered");
      } else if (spec.kind === "call-ended") {
        message(spec.request, {});
        jsdtRun("pusher_on_call_ended");
      } else if (spec.kind === "cancel") {
        message(spec.request, spec.headers);
        routeCancel();
      } else if (spec.kind === "helper") {
        evapiMessageReceived(spec.text);
      } else {
        throw new Error("unknown step kind " + spec.kind);
      }
    });
  })(SCENARIO.steps[s]);
}
summary.finishedAtMs = Date.now();
summary.typeErrors = STATE.typeErrors;
summary.tableErrors = STATE.tableErrors;
summary.unstubbed = STATE.unstubbed;
summary.lockErrors = STATE.lockErrors;
summary.heldLocks = STATE.lockDepth;
summary.registeredLookups = STATE.registeredLookups;
print(JSON.stringify(summary));
`;

type Pvs = { [pv: string]: string | number };

interface Step {
  label: string;
  kind: "worker-init" | "register" | "invite" | "invite-first-failed" | "branch" | "answered" | "call-ended" | "cancel" | "helper";
  request?: Pvs;
  headers?: { [name: string]: string | string[] };
  text?: string;
  registered?: number;
  helperConnections?: number;
  appendResult?: number;
}

type Json = { [key: string]: unknown };

interface StepResult {
  error: string | null;
  written: Pvs;
  headers: { [name: string]: string };
  devices: { [aor: string]: { [instance: string]: Json } };
  calls: { [key: string]: unknown };
  relayed: Json[];
  continued: Json[];
  suspended: Json[];
  appended: Json[];
  replies: number[];
  replyHeaders: string[];
  sql: { connection: string; query: string }[];
  logs: { level: string; message: string }[];
  /** KSR.set_forward_no_connect() calls. */
  forwardNoConnect: number;
  /** $ru after the step (null when the request has none). */
  ruri: string | null;
}

interface Summary {
  steps: { [label: string]: StepResult };
  order: string[];
  startedAtMs: number;
  finishedAtMs: number;
  entryPoints: { [name: string]: string };
  typeErrors: string[];
  /** htables the plugin used that pusher.cfg does not define. */
  tableErrors: string[];
  /** KSR functions the stub answered with -1 because it does not implement them. */
  unstubbed: string[];
  lockErrors: string[];
  heldLocks: { [key: string]: number };
  registeredLookups: { table: string; uri?: string }[];
}

function register(label: string, request: Pvs = {}, headers: Step["headers"] = {}): Step {
  return {
    label,
    kind: "register",
    request: {
      $tU: "user_1234567",
      $td: "example.com",
      $ua: "MyApp/2.1 iOS 17.2",
      $ci: "reg-" + label,
      $si: "203.0.113.7",
      $sp: 61767,
      $pr: "tcp",
      $RAi: "198.51.100.1",
      $RAp: 5060,
      $Ri: "10.0.0.1",
      $Rp: 5060,
      ...request,
    },
    headers: { Contact: KAZOO_SEED_CONTACT, Expires: "3600", ...headers },
  };
}

function invite(label: string, tindex: number, tlabel: number, extra: Partial<Step> = {}, request: Pvs = {}): Step {
  return {
    label,
    kind: "invite",
    request: {
      $rU: "user_1234567",
      $rd: "example.com",
      $ci: label + "@example.com",
      $ft: "from-tag-" + tindex,
      "$T(id_index)": tindex,
      "$T(id_label)": tlabel,
      ...request,
    },
    headers: {
      From: '"Bob From" <sip:+15550001@example.com>;tag=from-tag-' + tindex,
      "P-Asserted-Identity": '"Bob \\\\ PAI" <sip:%2B15550002@example.com>',
    },
    registered: -1,
    ...extra,
  };
}

function transactionStep(label: string, kind: "answered" | "call-ended", tindex: number, tlabel: number): Step {
  return { label, kind, request: { "$T(id_index)": tindex, "$T(id_label)": tlabel } };
}

function helperStep(label: string, text: string): Step {
  return { label, kind: "helper", text };
}

function pushResult(callRef: string, outcome: "sent" | "failed", extra: Json = {}): string {
  return JSON.stringify({ type: "push-result", callRef, callId: "x", aor: AOR, instance: SEED_INSTANCE, outcome, ...extra });
}

/** Runs stub, bundle and driver as three programs in one Duktape heap (the bundle alone, as app_jsdt loads it). */
function runInDuktape(dir: string, name: string, config: unknown, steps: Step[]): Summary {
  const configText = typeof config === "string" ? config : JSON.stringify(config);
  const scenario = { configFile: CONFIG_FILE, configText, steps, entryPoints: CFG_ENTRY_POINTS, htables: CFG_HTABLES };
  const stubFile = join(dir, name + "-ksr-stub.js");
  const driverFile = join(dir, name + "-driver.js");
  writeFileSync(stubFile, "var SCENARIO = " + JSON.stringify(scenario) + ";\n" + STUB_KSR);
  writeFileSync(driverFile, DRIVER);
  const stdout = execFileSync("duk", [stubFile, BUNDLE, driverFile], { encoding: "utf8", timeout: 20000 });
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as Summary;
}

const WORKER_INIT: Step = { label: "worker-init", kind: "worker-init" };

const MAIN_STEPS: Step[] = [
  WORKER_INIT,
  register("register-unknown-ua", { $ua: "Linphone/5.2", $tU: "carol" }, { Contact: "<sip:carol@192.0.2.9>;app-id=a;pn-tok=t;pn-type=apple" }),
  register("register"),
  invite("invite-unknown-callee", 1, 2, {}, { $rU: "nobody" }),
  invite("invite-hold", 101, 202),
  helperStep("helper-hello", '{"type":"hello","version":1,"pid":4242}'),
  helperStep("helper-garbage", "{not json"),
  helperStep("helper-sent", pushResult("101:202", "sent")),
  helperStep("helper-failed", pushResult("101:202", "failed", { code: "PUSHER_ERR_APNS", reason: "InternalServerError" })),
  invite("invite-hold-again", 103, 204),
  register("register-after-hold"),
  transactionStep("answered-after-hold", "answered", 103, 204),
  invite("invite-two-waiting-1", 105, 206),
  invite("invite-two-waiting-2", 107, 208),
  register("register-two-waiting"),
  transactionStep("call-ended-1", "call-ended", 105, 206),
  transactionStep("call-ended-2", "call-ended", 107, 208),
  invite("invite-registered", 109, 210, { registered: 1 }),
  // lookup("location") made the R-URI the phone's Contact URI (its user and host are not the AOR's domain).
  { label: "invite-first-failed", kind: "invite-first-failed", request: { $ru: "sip:user_1234567@192.168.1.1:61767;transport=TCP;ob", $rU: "user_1234567", $rd: "192.168.1.1" } },
  { label: "cancel-held", kind: "cancel", request: { $ci: "invite-registered@example.com", $ft: "from-tag-109" }, headers: {} },
  invite("invite-no-helper", 111, 212, { helperConnections: 0 }),
  invite("invite-drop-token", 113, 214, { helperConnections: 1 }),
  helperStep("helper-drop-token", pushResult("113:214", "failed", { code: "PUSHER_ERR_APNS_BAD_DEVICE_TOKEN", dropToken: true, token: SEED_TOKEN })),
  invite("invite-after-drop", 115, 216),
  helperStep("helper-stats", '{"type":"stats-request","id":9}'),
];

// Three phones on one AOR: B wakes first and gets the call, A wakes later and is forked in, C never wakes.
const PHONE_B = '<sip:user_1234567@192.0.2.20:5060;transport=tcp>;+sip.instance="<urn:uuid:bbbb>";app-id=com.app.mymobileapp;pn-tok=token-b;pn-type=firebase';
const PHONE_C = '<sip:user_1234567@192.0.2.30:5060;transport=tcp>;+sip.instance="<urn:uuid:cccc>";app-id=com.app.mymobileapp;pn-tok=c0ffee0123;pn-type=apple';
const FORK_STEPS: Step[] = [
  WORKER_INIT,
  register("register-a"),
  register("register-b", {}, { Contact: PHONE_B }),
  register("register-c", {}, { Contact: PHONE_C }),
  invite("invite-hold", 201, 301),
  register("b-wakes", {}, { Contact: PHONE_B }),
  register("a-wakes"),
  register("a-registers-again"),
  transactionStep("b-answers", "answered", 201, 301),
];

let dir: string;
let run: Summary;
let fork: Summary;

/**
 * The bundle under test is the one `npm test` builds before vitest starts. It is not rebuilt here: integration
 * tests running beside this file load dist/ into Kamailio, and must never see it half-written.
 */
function requireFreshBundle(): void {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run node build.mjs (npm test does)`);
  const sources = ["src/plugin", "src"].flatMap((folder) =>
    readdirSync(join(ROOT, folder)).filter((name) => name.endsWith(".ts")).map((name) => join(ROOT, folder, name)),
  );
  const newest = Math.max(...sources.map((file) => statSync(file).mtimeMs));
  if (statSync(BUNDLE).mtimeMs < newest) throw new Error(`${BUNDLE} is older than the plugin sources: run node build.mjs`);
}

beforeAll(() => {
  requireFreshBundle();
  dir = mkdtempSync(join(tmpdir(), "pusher-duktape-"));
  run = runInDuktape(dir, "main", CONFIG, MAIN_STEPS);
  fork = runInDuktape(dir, "fork", CONFIG, FORK_STEPS);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function stepOf(label: string, summary: Summary = run): StepResult {
  const result = summary.steps[label];
  expect(result, `step ${label} ran`).toBeDefined();
  expect(result.error, `step ${label} threw`).toBeNull();
  return result;
}

describe("dist/pusher.js", () => {
  it("is smaller than the 128 KiB app_jsdt reads", () => {
    expect(statSync(BUNDLE).size).toBeLessThan(APP_JSDT_MAX_BYTES);
  });

  it("parses in Duktape 2.7 and defines every entry point pusher.cfg runs as a global function", () => {
    expect(CFG_ENTRY_POINTS).toEqual(expect.arrayContaining(["pusher_on_register", "pusher_on_invite", "pusher_on_helper_message"]));
    for (const name of CFG_ENTRY_POINTS) expect(run.entryPoints[name], name).toBe("function");
  });

  it("uses only the htables pusher.cfg defines", () => {
    expect(CFG_HTABLES).toEqual(expect.arrayContaining(["pusher_devices", "pusher_calls", "pusher_state"]));
    expect(run.tableErrors).toEqual([]);
    expect(fork.tableErrors).toEqual([]);
  });

  it.each([
    ["main", () => run, MAIN_STEPS.length],
    ["fork", () => fork, FORK_STEPS.length],
  ])("runs every step of the %s scenario without throwing, writes PVs with the right types, and releases every lock", (_name, summary, steps) => {
    const result = summary();
    expect(result.order).toHaveLength(steps);
    for (const label of result.order) expect(result.steps[label].error, `step ${label}`).toBeNull();
    expect(result.typeErrors).toEqual([]);
    expect(result.lockErrors).toEqual([]);
    expect(result.heldLocks).toEqual({});
  });

  it("leaves pusher_calls empty once every call has ended", () => {
    expect(stepOf("invite-after-drop").calls).toEqual({});
    expect(stepOf("b-answers", fork).calls).toEqual({});
  });
});

describe("REGISTER in Duktape", () => {
  it("ignores push params from a User-Agent no rule matches, and says so", () => {
    const result = stepOf("register-unknown-ua");
    expect(result.devices).toEqual({});
    expect(result.logs).toEqual([
      { level: "info", message: "pusher: push params from User-Agent 'Linphone/5.2' ignored: no User-Agent rule matches it (pusher ua add)\n" },
    ]);
  });

  it("percent-encodes the space in the token of Kazoo's sample Contact before save", () => {
    const result = stepOf("register");
    expect(result.headers.Contact).toBe(KAZOO_SEED_CONTACT.replace("byten yhtevtrw", "byten%20yhtevtrw"));
    expect(result.written["$var(pusher_contact)"]).toBe(result.headers.Contact);
  });

  it("stores Kazoo's sample device under its AOR and +sip.instance, with the token as the phone sent it", () => {
    const result = stepOf("register");
    expect(Object.keys(result.devices)).toEqual([AOR]);
    expect(Object.keys(result.devices[AOR])).toEqual([SEED_INSTANCE]);
    expect(result.devices[AOR]).toMatchObject({
      [SEED_INSTANCE]: {
        aor: AOR,
        instance: SEED_INSTANCE,
        appId: "com.app.mymobileapp",
        provider: "apple",
        token: SEED_TOKEN,
        userAgent: "MyApp/2.1 iOS 17.2",
        proxy: "sip:198.51.100.1:5060;transport=tcp",
        registeredAtMs: expect.any(Number),
      },
    });
    expect(result.written["$var(pusher_resume)"]).toBe(0);
    expect(result.continued).toEqual([]);
    const stored = result.logs.filter((log) => log.message.includes("device stored"));
    expect(stored).toHaveLength(1);
    expect(stored[0].message).toContain(`aor=${AOR} instance=${SEED_INSTANCE} app=com.app.mymobileapp`);
    expect(stored[0].message).toContain("token=34fret…vtrw");
    expect(stored[0].message).not.toContain(SEED_TOKEN);
  });

  it("leaves a REGISTER that already has a +sip.pns Feature-Caps to the proxy nearer the phone (RFC 8599 §5.6.1.1)", () => {
    const summary = runInDuktape(dir, "pushed-elsewhere", CONFIG, [
      WORKER_INIT,
      register("other-caps", {}, { "Feature-Caps": "*;+g.3gpp.icsi-ref" }),
      // A new token: processed, it would replace the stored one.
      register("pushed-elsewhere", {}, { "Feature-Caps": '*;+sip.pns="apns"', Contact: KAZOO_SEED_CONTACT.replace(/pn-tok=[^;]*/, "pn-tok=feedc0de") }),
    ]);
    expect(Object.keys(stepOf("other-caps", summary).devices)).toEqual([AOR]); // another capability is no push
    const result = stepOf("pushed-elsewhere", summary);
    expect(Object.values(result.devices[AOR]).map((device) => device.token)).toEqual([SEED_TOKEN]);
    expect(result.replyHeaders).toEqual([]);
    expect(result.sql.filter((q) => q.query.includes(AOR))).toEqual([]);
    expect(result.logs.filter((log) => log.message.includes("device stored"))).toEqual([]);
  });

  it("writes the stored device to the database (sqlops connection pusher) during the REGISTER", () => {
    const writes = stepOf("register").sql.filter((q) => q.query.includes(AOR));
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.every((q) => q.connection === "pusher")).toBe(true);
  });

  it("hands a held call to the REGISTER of its AOR: pusher_resume 1 with the call's tindex and tlabel", () => {
    const result = stepOf("register-after-hold");
    expect(result.continued).toEqual([{ tindex: 103, tlabel: 204, route: "PUSHER_DELIVER" }]);
    expect(result.written["$var(pusher_resume)"]).toBe(0);
    expect(result.calls[`wait:${AOR}`]).toBeUndefined();
  });

  it("does not log the device again when the same binding registers again", () => {
    const messages = stepOf("register-after-hold").logs.map((log) => log.message);
    expect(messages.filter((message) => message.includes("device stored"))).toEqual([]);
    expect(messages).toContain(`pusher: device registered, delivering call-id=invite-hold-again@example.com aor=${AOR}\n`);
  });

  it("hands every waiting call to one REGISTER, oldest first, through pusher_next_held_call", () => {
    const result = stepOf("register-two-waiting");
    expect(result.continued.map((c) => [c.tindex, c.tlabel])).toEqual([
      [105, 206],
      [107, 208],
    ]);
    expect(result.written["$var(pusher_resume_queue)"]).toBe("");
    expect(result.calls[`wait:${AOR}`]).toBeUndefined();
  });

  it("forgets delivered calls when they end", () => {
    expect(stepOf("answered-after-hold").calls).toEqual({});
    expect(Object.keys(stepOf("call-ended-1").calls).filter((key) => key.includes("105:206"))).toEqual([]);
    expect(stepOf("call-ended-2").calls).toEqual({});
  });
});

describe("INVITE in Duktape", () => {
  it("leaves a callee without push devices untouched", () => {
    const result = stepOf("invite-unknown-callee");
    expect(result.written).toEqual({ "$var(pusher_action)": "none" });
    expect(result.relayed).toEqual([]);
    expect(result.suspended).toEqual([]);
  });

  it("holds the call, with Kazoo's 182, when the callee has a device but no registered contact", () => {
    const result = stepOf("invite-hold");
    expect(result.written).toMatchObject({
      "$var(pusher_action)": "hold",
      "$var(pusher_wait_ms)": 25000,
      "$avp(pusher_aor)": AOR,
    });
    expect(result.suspended).toEqual([
      { tindex: 101, tlabel: 202, waitMs: 25000, provisionalCode: 182, provisionalReason: "sending push notification" },
    ]);
    expect(run.registeredLookups[0].table).toBe("location");
  });

  it("relays one push request with the token, the caller from P-Asserted-Identity, and the proxy", () => {
    const result = stepOf("invite-hold");
    expect(result.relayed).toEqual([
      {
        type: "push",
        callRef: "101:202",
        callId: "invite-hold@example.com",
        aor: AOR,
        device: { instance: SEED_INSTANCE, appId: "com.app.mymobileapp", provider: "apple", token: SEED_TOKEN },
        caller: { number: "+15550002", name: "Bob \\ PAI" },
        proxy: "sip:198.51.100.1:5060;transport=tcp",
        ringsUntilMs: expect.any(Number),
      },
    ]);
    const ringsUntilMs = result.relayed[0].ringsUntilMs as number;
    expect(ringsUntilMs).toBeGreaterThanOrEqual(run.startedAtMs + 25000);
    expect(ringsUntilMs).toBeLessThanOrEqual(run.finishedAtMs + 25000);
    expect(result.logs.map((log) => log.message)).toEqual([
      `pusher: push requested call-id=invite-hold@example.com aor=${AOR} app=com.app.mymobileapp token=34fret…vtrw\n`,
    ]);
  });

  it("records the held call and the AOR's wait list in pusher_calls", () => {
    const result = stepOf("invite-hold");
    expect(result.calls[`wait:${AOR}`]).toEqual(["101:202"]);
    expect(result.calls["call:101:202"]).toMatchObject({
      callRef: "101:202",
      tindex: 101,
      tlabel: 202,
      aor: AOR,
      callId: "invite-hold@example.com",
      failedInstances: [],
    });
  });

  it("relays the INVITE first (invite-first) when the callee has a registered contact", () => {
    const result = stepOf("invite-registered");
    expect(result.written).toMatchObject({
      "$var(pusher_action)": "invite-first",
      "$var(pusher_invite_first_ms)": 1500,
      "$avp(pusher_aor)": AOR,
    });
    expect(result.relayed).toEqual([]);
    expect(result.suspended).toEqual([]);
  });

  it("holds and pushes when the invite-first branch fails", () => {
    const result = stepOf("invite-first-failed");
    expect(result.written["$var(pusher_action)"]).toBe("hold");
    expect(result.suspended.map((call) => [call.tindex, call.tlabel])).toEqual([[109, 210]]);
    expect(result.relayed.map((request) => request.callRef)).toEqual(["109:210"]);
    expect(result.calls[`wait:${AOR}`]).toEqual(["109:210"]);
  });

  it("ends a held call on the caller's CANCEL and tells the pushed phone it was missed", () => {
    const result = stepOf("cancel-held");
    expect(result.written).toMatchObject({ "$var(pusher_cancel)": 1, "$var(pusher_tindex)": 109, "$var(pusher_tlabel)": 210 });
    expect(result.continued).toEqual([{ tindex: 109, tlabel: 210, route: "PUSHER_CANCELLED" }]);
    expect(result.relayed).toEqual([
      expect.objectContaining({
        type: "push",
        callRef: "109:210",
        purpose: "call-ended",
        endReason: "cancelled",
        // A PushKit token: a VoIP push (apple.callEndedVoipPush), never an alert.
        device: expect.objectContaining({ token: SEED_TOKEN, pushKind: "voip" }),
      }),
    ]);
    expect(result.calls).toEqual({});
  });

  it("answers unavailable without holding when no helper is connected, and logs it", () => {
    const result = stepOf("invite-no-helper");
    expect(result.written["$var(pusher_action)"]).toBe("unavailable");
    expect(result.relayed).toEqual([]);
    expect(result.suspended).toEqual([]);
    expect(result.calls).toEqual({});
    expect(result.logs.map((log) => log.level)).toEqual(["err"]);
  });
});

describe("helper messages in Duktape", () => {
  it("answers the helper's stats request with every pusher_stats item, so its /metrics has Kamailio's side", () => {
    const result = stepOf("helper-stats");
    expect(result.relayed).toHaveLength(1);
    const report = result.relayed[0] as { type: string; id: number; values: { [key: string]: number }; helperConnections: number };
    expect(report).toMatchObject({ type: "stats", id: 9 });
    expect(Object.keys(report.values).sort()).toEqual(kamailioStatsKeys().sort());
    expect(report.values.calls_held).toBeGreaterThan(0);
    expect(report.values.calls_unreachable).toBeGreaterThan(0);
    expect(result.logs).toEqual([]);
  });

  it("logs the helper's hello", () => {
    const result = stepOf("helper-hello");
    expect(result.written).toEqual({ "$var(pusher_fail)": 0 });
    expect(result.logs).toEqual([{ level: "info", message: "pusher: helper connected (pid 4242, protocol 1)\n" }]);
  });

  it("ignores a malformed message with an error log", () => {
    const result = stepOf("helper-garbage");
    expect(result.written).toEqual({ "$var(pusher_fail)": 0 });
    expect(result.logs).toEqual([{ level: "err", message: "pusher: malformed message from the helper ignored (9 bytes)\n" }]);
  });

  it("keeps holding the call when a push was sent", () => {
    const result = stepOf("helper-sent");
    expect(result.written).toEqual({ "$var(pusher_fail)": 0 });
    expect(result.continued).toEqual([]);
    expect(result.calls[`wait:${AOR}`]).toEqual(["101:202"]);
  });

  it("sets pusher_fail 1 with the call's tindex and tlabel when the push of its only device fails", () => {
    const result = stepOf("helper-failed");
    expect(result.written).toMatchObject({
      "$var(pusher_fail)": 1,
      "$var(pusher_tindex)": 101,
      "$var(pusher_tlabel)": 202,
    });
    expect(result.continued).toEqual([{ tindex: 101, tlabel: 202, route: "PUSHER_PUSH_FAILED" }]);
    expect(result.calls).toEqual({});
    expect(result.devices[AOR]).toBeDefined();
  });

  it("removes the device when the helper says its token is dead, so the next call is not held", () => {
    const dropped = stepOf("helper-drop-token");
    expect(dropped.written["$var(pusher_fail)"]).toBe(1);
    expect(dropped.devices).toEqual({});
    expect(stepOf("invite-after-drop").written).toEqual({ "$var(pusher_action)": "none" });
  });

  it("keeps a device that registered a new token before the helper reported the pushed one dead", () => {
    const newToken = "0123456789abcdef0123456789abcdef";
    const summary = runInDuktape(dir, "drop-old-token", CONFIG, [
      WORKER_INIT,
      register("register"),
      invite("invite", 121, 222, { helperConnections: 1 }),
      register("register-new-token", {}, { Contact: KAZOO_SEED_CONTACT.replace(/pn-tok=[^;]*/, "pn-tok=" + newToken) }),
      helperStep("helper-drop-old", pushResult("121:222", "failed", { code: "PUSHER_ERR_APNS_UNREGISTERED", dropToken: true, token: SEED_TOKEN })),
    ]);
    const devices = stepOf("helper-drop-old", summary).devices[AOR];
    expect(Object.values(devices).map((device) => device.token)).toEqual([newToken]);
  });

  it("after an APNs 410, keeps a device registered after the 410's timestamp and removes one registered before it", () => {
    const dead = (label: string, invalidSinceMs: number) =>
      helperStep(label, pushResult("121:222", "failed", { code: "PUSHER_ERR_APNS_UNREGISTERED", dropToken: true, token: SEED_TOKEN, tokenInvalidSinceMs: invalidSinceMs }));
    const summary = runInDuktape(dir, "drop-410-timestamp", CONFIG, [
      WORKER_INIT,
      register("register"),
      invite("invite", 121, 222, { helperConnections: 1 }),
      dead("helper-410-before-register", Date.now() - 3_600_000),
      dead("helper-410-after-register", Date.now() + 3_600_000),
    ]);
    const kept = stepOf("helper-410-before-register", summary);
    expect(Object.values(kept.devices[AOR]).map((device) => device.token)).toEqual([SEED_TOKEN]);
    expect(kept.logs.map((log) => log.message).join("\n")).toMatch(/device kept aor=\S+ instance=\S+: APNs found its token invalid at \S+Z, but it was registered again after that/);
    expect(stepOf("helper-410-after-register", summary).devices).toEqual({});
  });
});

describe("several phones of one AOR in Duktape", () => {
  it("pushes every phone of the AOR for one held call", () => {
    const result = stepOf("invite-hold", fork);
    expect(result.relayed.map((request) => (request.device as Json).token)).toEqual(
      expect.arrayContaining([SEED_TOKEN, "token-b", "c0ffee0123"]),
    );
    expect(result.relayed).toHaveLength(3);
  });

  it("delivers the held call to the first phone that wakes", () => {
    expect(stepOf("b-wakes", fork).continued).toEqual([{ tindex: 201, tlabel: 301, route: "PUSHER_DELIVER" }]);
  });

  it("forks the ringing call to a phone that wakes later, once, with tsilo", () => {
    const woke = stepOf("a-wakes", fork);
    expect(woke.continued).toEqual([]);
    expect(woke.appended).toEqual([{ tindex: 201, tlabel: 301, table: "location", uri: `sip:${AOR}` }]);
    expect(stepOf("a-registers-again", fork).appended).toEqual([]);
  });

  it("tells only the phone that never got the call that it was answered elsewhere", () => {
    const result = stepOf("b-answers", fork);
    expect(result.relayed).toEqual([
      expect.objectContaining({
        purpose: "call-ended",
        endReason: "answered-elsewhere",
        device: expect.objectContaining({ token: "c0ffee0123", pushKind: "voip" }),
      }),
    ]);
  });
});

// Phones as deployments have them: RFC 8599 params in the Contact URI, a Contact user that is not the AOR's,
// each phone on its own loopback address.
const TEAM_ID = "ABCDE12345";
const WEBPUSH_ENDPOINT = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk";
const APPS_CONFIG = {
  ...CONFIG,
  apps: {
    "com.example.phone": { apple: { certificateFile: "/etc/kamailio-pusher/credentials/phone.pem" } },
    "com.example.ended": { apple: { certificateFile: "/etc/kamailio-pusher/credentials/ended.pem", callEndedVoipPush: true } },
    "com.example.android": { firebase: { serviceAccountFile: "/etc/kamailio-pusher/credentials/android.json" } },
    "web.example": { webpush: { vapidKeyFile: "/etc/kamailio-pusher/credentials/vapid.pem", subject: "mailto:ops@example.com", endpointHosts: ["*.push.services.mozilla.com"] } },
  },
};

/** The Contact of phone `n` (127.0.0.<n+1>, Contact user c-<n>) with `params` in its URI. */
function phoneContact(n: number, params: string): string {
  return `<sip:c-${n}@127.0.0.${n + 1}:5062;transport=tcp;${params}>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000000000${String(n).padStart(2, "0")}>"`;
}

const PUSHKIT_TOKEN = "1f".repeat(32);
const PUSHKIT_ENDED_TOKEN = "2e".repeat(32);
const TWO_TOKEN_VOIP = "3d".repeat(32);
const TWO_TOKEN_ALERT = "4c".repeat(32);
const ALERT_TOKEN = "5b".repeat(32);
const FCM_TOKEN = "fcm-token-6";
const CALL_ENDED_PHONES: { [label: string]: string } = {
  "pushkit-only": phoneContact(1, `pn-provider=apns;pn-prid=${PUSHKIT_TOKEN};pn-param=${TEAM_ID}.com.example.phone.voip`),
  "pushkit-only-voip-ended": phoneContact(2, `pn-provider=apns;pn-prid=${PUSHKIT_ENDED_TOKEN};pn-param=${TEAM_ID}.com.example.ended.voip`),
  "two-tokens": phoneContact(3, `pn-provider=apns;pn-prid=${TWO_TOKEN_ALERT}:remote&${TWO_TOKEN_VOIP}:voip;pn-param=${TEAM_ID}.com.example.phone.remote&voip`),
  "alert-only": phoneContact(4, `pn-provider=apns;pn-prid=${ALERT_TOKEN};pn-param=${TEAM_ID}.com.example.phone`),
  "webpush-without-keys": phoneContact(5, `pn-provider=webpush;pn-prid=${encodeURIComponent(WEBPUSH_ENDPOINT)};app-id=web.example`),
  fcm: phoneContact(6, `pn-provider=fcm;pn-prid=${FCM_TOKEN};pn-param=example-project;app-id=com.example.android`),
};

describe("call-ended pushes in Duktape (issue 12: never an alert push to a PushKit token)", () => {
  let summary: Summary;
  beforeAll(() => {
    summary = runInDuktape(dir, "call-ended-targets", APPS_CONFIG, [
      WORKER_INIT,
      // Kazoo's sample: a PushKit token of an app with no apps.<app> entry (Kazoo mode).
      register("kazoo-pushkit-only"),
      ...Object.keys(CALL_ENDED_PHONES).map((label) => register(label, {}, { Contact: CALL_ENDED_PHONES[label] })),
      invite("invite-hold", 401, 501),
      { label: "cancel", kind: "cancel", request: { $ci: "invite-hold@example.com", $ft: "from-tag-401" }, headers: {} },
    ]);
  });

  /** [token, provider, pushKind] of each push request of a step. */
  function pushes(label: string): [string, string, string | null][] {
    return stepOf(label, summary).relayed.map((request) => {
      const device = request.device as Json;
      return [device.token as string, device.provider as string, (device.pushKind as string | undefined) ?? null];
    });
  }

  it("rings every phone, the two-token one at its PushKit token, and names no alert token in a push request", () => {
    expect(Object.keys(stepOf("fcm", summary).devices[AOR])).toHaveLength(7);
    expect(pushes("invite-hold")).toEqual(
      expect.arrayContaining([
        [SEED_TOKEN, "apple", null],
        [PUSHKIT_TOKEN, "apple", "voip"],
        [PUSHKIT_ENDED_TOKEN, "apple", "voip"],
        [TWO_TOKEN_VOIP, "apple", "voip"],
        [ALERT_TOKEN, "apple", "alert"],
        [WEBPUSH_ENDPOINT, "webpush", null],
        [FCM_TOKEN, "firebase", null],
      ]),
    );
    expect(pushes("invite-hold")).toHaveLength(7);
    for (const request of stepOf("invite-hold", summary).relayed) expect(request.device).not.toHaveProperty("alertToken");
  });

  it("tells each phone the call ended where it can take it: alert tokens as alerts, PushKit only where the app asks, FCM as before", () => {
    const ended = stepOf("cancel", summary).relayed;
    expect(ended.every((request) => request.purpose === "call-ended" && request.endReason === "cancelled")).toBe(true);
    expect(pushes("cancel")).toEqual(
      expect.arrayContaining([
        // Linphone's two-token device: its alert (`:remote`) token, as an alert.
        [TWO_TOKEN_ALERT, "apple", "alert"],
        [ALERT_TOKEN, "apple", "alert"],
        // apps.com.example.ended.apple.callEndedVoipPush: a VoIP push to its PushKit token.
        [PUSHKIT_ENDED_TOKEN, "apple", "voip"],
        [FCM_TOKEN, "firebase", null],
      ]),
    );
    // No call-ended push to a PushKit-only device of an app that did not ask (Kazoo's, com.example.phone), nor
    // to a Web Push subscription without keys.
    expect(pushes("cancel")).toHaveLength(4);
    const twoTokens = ended.find((request) => (request.device as Json).token === TWO_TOKEN_ALERT);
    expect(twoTokens?.device).toEqual({
      instance: "urn:uuid:00000000-0000-0000-0000-000000000003",
      appId: "com.example.phone",
      provider: "apple",
      token: TWO_TOKEN_ALERT,
      pushKind: "alert",
      apnsTopic: "com.example.phone",
    });
  });
});

describe("the kept plan in Duktape (issue 12: one AOR per call, decided once)", () => {
  it("pushes the callee's AOR when invite-first fails, though lookup() made the R-URI the phone's Contact", () => {
    const contact = phoneContact(1, `pn-provider=apns;pn-prid=${PUSHKIT_TOKEN};pn-param=${TEAM_ID}.com.example.phone.voip`);
    const summary = runInDuktape(dir, "kept-plan", APPS_CONFIG, [
      WORKER_INIT,
      register("register", { $tU: "alice" }, { Contact: contact }),
      invite("invite", 601, 701, { registered: 1 }, { $rU: "alice" }),
      {
        label: "invite-first-failed",
        kind: "invite-first-failed",
        request: { $ru: `sip:c-1@127.0.0.2:5062;transport=tcp;pn-provider=apns;pn-prid=${PUSHKIT_TOKEN};pn-param=${TEAM_ID}.com.example.phone.voip`, $rU: "c-1", $rd: "127.0.0.2" },
      },
    ]);
    const invited = stepOf("invite", summary);
    expect(invited.written).toMatchObject({ "$var(pusher_action)": "invite-first", "$avp(pusher_aor)": "alice@example.com" });
    // No branch of the call opens a connection towards a phone (a sleeping TCP phone's is gone).
    expect(invited.forwardNoConnect).toBe(1);

    const failed = stepOf("invite-first-failed", summary);
    expect(failed.written["$var(pusher_action)"]).toBe("hold");
    expect(failed.relayed).toEqual([expect.objectContaining({ callRef: "601:701", aor: "alice@example.com", device: expect.objectContaining({ token: PUSHKIT_TOKEN }) })]);
    expect(failed.calls["wait:alice@example.com"]).toEqual(["601:701"]);
    expect(failed.calls["call:601:701"]).toMatchObject({ aor: "alice@example.com", callId: "invite@example.com" });
    expect(Object.keys(failed.calls).filter((key) => key.includes("127.0.0.2") || key.includes("c-1"))).toEqual([]);
  });
});

describe("push params out of the R-URI in Duktape (pusher_strip_push_params, issue 12)", () => {
  // A User-Agent rule with Kazoo-style custom names (config.ts keeps them lower-case; the URI may not).
  const config = {
    ...APPS_CONFIG,
    userAgents: [{ name: "acme", regex: "^Acme/", properties: { appId: "X-App", type: "x-kind", token: "X-Push-Token" } }, ...CONFIG.userAgents],
  };
  // [case, the branch's R-URI (a Contact URI after lookup()), $ru after route PUSHER_STRIP_PUSH_PARAMS]
  const CASES: [string, string, string][] = [
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
    ["RFC 8599 webpush", "sip:c-3@127.0.0.4;pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example.net%2Fx;app-id=web.example", "sip:c-3@127.0.0.4"],
    ["Kazoo's default names and its one-time token", "sip:c-4@127.0.0.5:5066;app-id=com.app;pn-tok=abc;pn-type=apple;x-token-reg=0123abcd;transport=udp", "sip:c-4@127.0.0.5:5066;transport=udp"],
    ["a User-Agent rule's names", "sip:c-5@127.0.0.6;X-App=com.acme;x-kind=firebase;X-Push-Token=tok;lr", "sip:c-5@127.0.0.6;lr"],
    ["names in any case", "sip:c-6@127.0.0.7;PN-Provider=apns;Pn-Prid=ab;PN-PARAM=T.b;App-ID=a;PN-TOK=t;Pn-Type=apple;X-Token-Reg=1", "sip:c-6@127.0.0.7"],
    [
      "other params kept in their order, valued or not",
      "sip:c-7@127.0.0.8:5068;transport=tcp;pn-prid=ab;ob;alias=127.0.0.9~5070~1;app-id=a;lr;user=phone;maddr=127.0.0.10;pn-param=T.b;nat=yes",
      "sip:c-7@127.0.0.8:5068;transport=tcp;ob;alias=127.0.0.9~5070~1;lr;user=phone;maddr=127.0.0.10;nat=yes",
    ],
    ["the headers part kept as it is", "sip:c-8@127.0.0.11;pn-prid=ab;transport=udp?Subject=pn-prid%3Dx&X-Other=1", "sip:c-8@127.0.0.11;transport=udp?Subject=pn-prid%3Dx&X-Other=1"],
    ["only push params before the headers", "sip:c-9@127.0.0.12;pn-prid=ab;pn-provider=fcm?X-Other=1", "sip:c-9@127.0.0.12?X-Other=1"],
    ["a user part with a `;` of its own", "sip:c;pn-x=1@127.0.0.19;transport=udp;pn-prid=ab", "sip:c;pn-x=1@127.0.0.19;transport=udp"],
  ];
  // [case, R-URI]: nothing to remove.
  const UNCHANGED: [string, string][] = [
    ["no push param", "sip:c-10@127.0.0.13:5072;transport=udp;ob;alias=127.0.0.14~5074~1"],
    ["names that only look like push params", "sip:c-11@127.0.0.15;pnprid=1;xpn-tok=2;app=3;token=4;x-token=5"],
    ["another rule's names, when no rule has them", "sip:c-12@127.0.0.16;x-app2=a;x-push=t"],
    ["no params", "sip:c-13@127.0.0.17:5076"],
    ["headers only", "sips:c-14@127.0.0.18?X-Other=pn-prid%3D1"],
  ];
  const branch = (label: string, ruri: string): Step => ({ label, kind: "branch", request: { $ru: ruri } });
  let summary: Summary;
  beforeAll(() => {
    summary = runInDuktape(dir, "strip-push-params", config, [
      WORKER_INIT,
      ...CASES.map(([label, ruri]) => branch(label, ruri)),
      ...UNCHANGED.map(([label, ruri]) => branch(label, ruri)),
    ]);
  });

  it.each(CASES)("removes push params from $ru: %s", (label, _ruri, expected) => {
    const result = stepOf(label, summary);
    expect(result.written).toEqual({ $ru: expected });
    expect(result.ruri).toBe(expected);
  });

  it.each(UNCHANGED)("leaves $ru unwritten: %s", (label, ruri) => {
    const result = stepOf(label, summary);
    expect(result.written).toEqual({});
    expect(result.ruri).toBe(ruri);
  });

  it("writes $ru only as a string, with no error logged", () => {
    expect(summary.typeErrors).toEqual([]);
    for (const label of summary.order) expect(summary.steps[label].logs.filter((log) => log.level === "err")).toEqual([]);
  });
});

describe("Web Push endpoints in Duktape", () => {
  it("stores a subscription on a listed push service and refuses one on any other host, with a warning", () => {
    const config = { ...CONFIG, apps: { "web.example": { webpush: { vapidKeyFile: "/etc/kamailio-pusher/vapid.pem", subject: "mailto:ops@example.com", endpointHosts: ["*.push.services.mozilla.com"] } } } };
    const contact = (endpoint: string, instance: string) =>
      `<sip:user_1234567@203.0.113.7:61767;transport=tcp>;+sip.instance="<urn:uuid:${instance}>";pn-provider=webpush;pn-prid=${encodeURIComponent(endpoint)};app-id=web.example`;
    const listed = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk";
    const summary = runInDuktape(dir, "webpush-hosts", config, [
      WORKER_INIT,
      register("listed", {}, { Contact: contact(listed, "00000000-0000-0000-0000-0000000000w1") }),
      register("internal", {}, { Contact: contact("https://10.0.0.5:8443/admin", "00000000-0000-0000-0000-0000000000w2") }),
    ]);
    const devices = stepOf("internal", summary).devices["user_1234567@example.com"];
    expect(Object.values(devices).map((device) => device.token)).toEqual([listed]);
    const warnings = stepOf("internal", summary).logs.filter((log) => log.level === "warn").map((log) => log.message);
    expect(warnings.join("\n")).toContain(`the Web Push endpoint's host "10.0.0.5" is not in apps.web.example.webpush.endpointHosts`);
  });
});

describe("config in Duktape", () => {
  it("uses the defaults, with an error log, when the config file cannot be read", () => {
    const summary = runInDuktape(dir, "no-config", "", [WORKER_INIT, register("register")]);
    const result = stepOf("register", summary);
    expect(result.devices).toEqual({});
    expect(result.logs.map((log) => log.message)).toContain(`pusher: cannot read config file ${CONFIG_FILE}\n`);
  });

  it("refuses a config file Duktape finds invalid, naming the key", () => {
    const summary = runInDuktape(dir, "bad-config", { ...CONFIG, timers: { pushWaitMs: 5 } }, [WORKER_INIT, register("register")]);
    const result = stepOf("register", summary);
    expect(result.devices).toEqual({});
    expect(result.logs.map((log) => log.message)).toContain(
      `pusher: config file ${CONFIG_FILE} refused: timers.pushWaitMs: must be an integer from 1000 to 600000\n`,
    );
  });

  // BUG (reported, src/config.ts checkRegex): Node (the CLI's `pusher ua add`) accepts a lookbehind rule, but
  // Duktape 2.7 cannot compile it, so the plugin's validateConfig refuses the whole file and every rule is lost:
  // the "myapp" rule below never matches. Fix: refuse Duktape-incompatible regex syntax in checkRegex.
  it("refuses a config whose User-Agent rule uses regex syntax Duktape lacks, naming the key", () => {
    // The CLI refuses such a rule up front; a hand-edited file is refused whole (the running config stays).
    const config = { userAgents: [{ name: "modern", regex: "(?<=Linphone)iOS" }, ...CONFIG.userAgents] };
    const summary = runInDuktape(dir, "lookbehind", config, [WORKER_INIT, register("register")]);
    const errors = stepOf("register", summary).logs.filter((log) => log.level === "err");
    expect(errors.map((log) => log.message).join("\n")).toMatch(/userAgents\[0\]\.regex/);
  });
});
