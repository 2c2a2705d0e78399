// REGISTER, before save("location"), after authentication (register-token.ts runs before it, register-after-save.ts
// after save). Two steps, in the order route PUSHER_REGISTER_BEFORE_SAVE runs them:
//   - repairContactHeader (route PUSHER_INTERNAL_REPAIR_CONTACT): Kazoo's sample Contact made parseable
//     (repair-contact.ts);
//   - registerDevices: turns the Contact's push params into device records, and answers RFC 8599's questions.
//     Everything is decided first and written after, so a REGISTER refused with 555 changes nothing. Records are
//     on disk before save() sends the 200 (device-store).
// Sets for kamailio/pusher.cfg: $var(pusher_contact), the repaired Contact or ""; $var(pusher_refuse) 1 → cfg
// answers 555 and stops. Feature-Caps headers for the reply are added here with append_to_reply (RFC 8599 §5.6.1:
// one per supported push service, in RFC 6809's `*;+sip.pns="…"` form; Web Push's also carries the VAPID public
// key as +sip.vapid).

import { PusherConfig, UserAgentRule } from "../config";
import { maskToken } from "../mask-token";
import { PushProvider } from "../protocol";
import { DEFAULT_WEBPUSH_ENDPOINT_HOSTS, endpointAllowed, endpointAuthority } from "../webpush-endpoint";
import { DeviceRecord } from "../device-record";
import { appleBundleOf, isTopicOfApp } from "../apple-bundle";
import { tellClusterOfRegistration } from "./register-after-save";
import { ensureDevicesLoaded, removeAllDevices, removeDevice, saveDevice, withRowsWrittenOnce } from "./device-store";
import { markOf } from "./register-marks";
import { logError, logInfo, logWarn } from "./log";
import { contactExpires, parseContacts, ParsedContact } from "./parse-contact";
import { deviceInstance, PushBinding, readPushParams } from "./parse-push-params";
import { minExpiresOf, planRefreshOf, RefreshableContact, refreshableContact } from "./refresh-pushes";
import { currentConfig, withConfig } from "./settings";
import { STATE_TABLE, firstTimeIn, getNumber } from "./shared-state";
import { aorOf, aorOfText, header, pvOwnString, pvString, receivingProxyUri, setVar } from "./sip-message";
import { matchUserAgent, pushParamNamesOf, ruleAcceptsApp } from "./user-agent-rules";
import { instanceIdProblem, pushBindingProblem } from "./validate-push-params";
import { repairContact } from "./repair-contact";
import { has } from "./own-key";

// "Logged once": a mark per User-Agent lasts as long as marks may (knob PUSHER_LOG_MARK_SECONDS, shared-state.ts).
const ONCE_PER_MARK_LIFETIME_S = 0x7fffffff;
// The missing-projectIds warning, once an hour per app.
const PROJECT_IDS_WARNING_S = 3600;
// Bounds the work a hostile REGISTER can cause; real ones have one Contact header with one contact. Contacts past
// MAX_CONTACTS (in all headers together) are not read for push params (logged); the registrar still saves them.
const MAX_CONTACT_HEADERS = 16;
const MAX_CONTACTS = 16;
const MAX_FEATURE_CAPS_HEADERS = 16;
// RFC 8599 provider names per provider, in the order a query's Feature-Caps lists them.
const PNS_OF: { [provider: string]: string } = { apple: "apns", firebase: "fcm", webpush: "webpush" };
const CONFIG_KEY_OF: { [provider: string]: string } = { apple: "apple", firebase: "firebase", webpush: "webpush" };

/** Sets $var(pusher_contact) to the repaired Contact value, or "" (see repair-contact). */
export function repairContactHeader(): void {
  const contactHeader = header("Contact");
  const repaired = contactHeader ? repairContact(contactHeader) : null;
  setVar("pusher_contact", repaired || "");
}

/** Every Contact header of the message, joined: a REGISTER may carry several. */
function allContactValues(): string {
  const values: string[] = [];
  for (let i = 0; i < MAX_CONTACT_HEADERS; i++) {
    const value = KSR.hdr.get_idx("Contact", i);
    if (typeof value !== "string") break;
    values.push(value);
  }
  return values.join(",");
}

/**
 * RFC 8599 §5.6.1.1: a REGISTER that already has a +sip.pns Feature-Caps passed a proxy nearer the phone that
 * pushes for it; this one MUST NOT process the push params (no record, no Feature-Caps, no 555).
 */
function pushedByAnotherProxy(): boolean {
  for (let i = 0; i < MAX_FEATURE_CAPS_HEADERS; i++) {
    const value = KSR.hdr.get_idx("Feature-Caps", i);
    if (typeof value !== "string") return false;
    if (/(^|[;,])\s*\+sip\.pns\s*(=|;|,|$)/i.test(value)) return true;
  }
  return false;
}

/** "Configured provider for an app": apps.<appId> has credentials for that provider. */
function providerConfigured(config: PusherConfig, appId: string, provider: PushProvider): boolean {
  if (!appId || !has(config.apps, appId)) return false;
  return (config.apps[appId] as { [key: string]: unknown })[CONFIG_KEY_OF[provider]] !== undefined;
}

function configuredProviders(config: PusherConfig): string[] {
  const found: string[] = [];
  for (const provider in PNS_OF) {
    if (!has(PNS_OF, provider)) continue;
    for (const appId in config.apps) {
      if (providerConfigured(config, appId, provider as PushProvider)) {
        found.push(PNS_OF[provider]);
        break;
      }
    }
  }
  return found;
}

/** Web Push has no app in its params (RFC 8599 §12): the app-id param, else the one app with Web Push keys. */
function resolveWebPushApp(config: PusherConfig, binding: PushBinding): void {
  if (binding.provider !== "webpush" || binding.appId) return;
  for (const appId in config.apps) {
    if (providerConfigured(config, appId, "webpush")) {
      binding.appId = appId;
      return;
    }
  }
}

/**
 * Why a binding names something its app does not own, or null. A phone chooses its pn-param: an FCM project id
 * that is not one of the app's (FCM answers 403 PERMISSION_DENIED for it) or an APNs topic that is not the app's
 * bundle must never reach a provider with our credentials, where the refusal could read as the credentials'.
 */
function appOwnershipProblem(config: PusherConfig, binding: PushBinding): string | null {
  const app = has(config.apps, binding.appId) ? config.apps[binding.appId] : null;
  if (binding.apnsTopic !== undefined && !isTopicOfApp(binding.apnsTopic, binding.appId)) {
    return (
      "APNs topic " +
      JSON.stringify(binding.apnsTopic) +
      " (pn-param) is not the bundle of app " +
      binding.appId +
      " (" +
      appleBundleOf(binding.appId) +
      ")"
    );
  }
  if (binding.fcmProjectId === undefined || !app || !app.firebase) return null;
  const projectIds = app.firebase.projectIds;
  if (!projectIds) {
    // Configs written before projectIds existed: the helper pushes only to the service account's own project.
    if (firstTimeIn("no-project-ids:" + binding.appId, PROJECT_IDS_WARNING_S)) {
      logWarn(
        "apps." +
          binding.appId +
          ".firebase.projectIds is not set: the Firebase project id of bindings is not checked at REGISTER (pusher apps add-firebase sets it)",
      );
    }
    return null;
  }
  if (projectIds.indexOf(binding.fcmProjectId) >= 0) return null;
  return (
    "Firebase project id " +
    JSON.stringify(binding.fcmProjectId) +
    " (pn-param) is not one of apps." +
    binding.appId +
    ".firebase.projectIds"
  );
}

/** Why a Web Push binding's endpoint may not be pushed to (its host is not in the app's list), or null. */
function webPushEndpointProblem(config: PusherConfig, binding: PushBinding): string | null {
  if (binding.provider !== "webpush") return null;
  const app = has(config.apps, binding.appId) ? config.apps[binding.appId] : null;
  const hosts =
    app && app.webpush && app.webpush.endpointHosts ? app.webpush.endpointHosts : DEFAULT_WEBPUSH_ENDPOINT_HOSTS;
  if (endpointAllowed(binding.token, hosts)) return null;
  // Its port too when it is not 443: a host listed without a port allows only 443.
  const authority = endpointAuthority(binding.token);
  const where = authority ? authority.host + (authority.port === 443 ? "" : ":" + authority.port) : null;
  return (
    "the Web Push endpoint's host " +
    JSON.stringify(where) +
    " is not in apps." +
    binding.appId +
    ".webpush.endpointHosts"
  );
}

interface RegisterPlan {
  records: DeviceRecord[];
  removals: string[];
  featureCaps: string[];
  /** The +sip.vapid of the webpush Feature-Caps: the public key of the app it names (or of the first such app). */
  vapidKey: string;
  unsupported: string[];
}

/** The VAPID public key of `appId`, or with no app id of the first app that has one; "" when there is none. */
function vapidKeyOf(config: PusherConfig, appId?: string): string {
  for (const id in config.apps) {
    if (!has(config.apps, id) || (appId !== undefined && id !== appId)) continue;
    const webpush = config.apps[id].webpush;
    if (webpush && webpush.publicKey) return webpush.publicKey;
  }
  return "";
}

function featureCapsHeader(pns: string, vapidKey: string): string {
  const vapid = pns === "webpush" && vapidKey ? ';+sip.vapid="' + vapidKey + '"' : "";
  return 'Feature-Caps: *;+sip.pns="' + pns + '"' + vapid + "\r\n";
}

function addOnce(list: string[], value: string): void {
  if (list.indexOf(value) < 0) list.push(value);
}

/** `userAgent` and `expiresHeader`: the REGISTER's, read once for all its contacts (each read crosses into C). */
function planContact(
  plan: RegisterPlan,
  contact: ParsedContact,
  aor: string,
  rule: UserAgentRule | null,
  config: PusherConfig,
  userAgent: string,
  expiresHeader: string | null,
): void {
  if (contactExpires(contact, expiresHeader) <= 0) {
    // RFC 8599 §4.1.2: removing the binding disables push; the record goes at once.
    plan.removals.push(deviceInstance(contact));
    return;
  }
  const reading = readPushParams(contact, pushParamNamesOf(rule));
  if (reading.kind === "none") return;
  if (reading.kind === "query") {
    const supported = configuredProviders(config);
    if (reading.pns === "") for (let i = 0; i < supported.length; i++) addOnce(plan.featureCaps, supported[i]);
    else if (supported.indexOf(reading.pns === "apns.dev" ? "apns" : reading.pns) >= 0)
      addOnce(plan.featureCaps, reading.pns);
    else addOnce(plan.unsupported, reading.pns);
    if (!plan.vapidKey && plan.featureCaps.indexOf("webpush") >= 0) plan.vapidKey = vapidKeyOf(config);
    return;
  }
  if (reading.kind === "unsupported") {
    addOnce(plan.unsupported, reading.pns);
    return;
  }
  if (reading.kind === "refused") {
    logWarn(
      "push params refused aor=" +
        aor +
        " user-agent='" +
        userAgent +
        "' token=" +
        maskToken(reading.token) +
        ": " +
        reading.problem,
    );
    return;
  }
  const binding = reading.binding;
  resolveWebPushApp(config, binding);
  if (binding.pns !== undefined) {
    if (!providerConfigured(config, binding.appId, binding.provider)) {
      addOnce(plan.unsupported, binding.pns);
      return;
    }
  } else if (!rule) {
    if (firstTimeIn("no-ua-rule:" + userAgent, ONCE_PER_MARK_LIFETIME_S)) {
      logInfo("push params from User-Agent '" + userAgent + "' ignored: no User-Agent rule matches it (pusher ua add)");
    }
    return;
  }
  if (rule && !ruleAcceptsApp(rule, binding.appId)) {
    if (firstTimeIn("app-not-in-rule:" + rule.name + ":" + binding.appId, ONCE_PER_MARK_LIFETIME_S)) {
      logInfo(
        "push params for app " +
          binding.appId +
          " ignored: User-Agent rule " +
          rule.name +
          " accepts only " +
          (rule.appIds || []).join(", "),
      );
    }
    return;
  }
  const problem =
    instanceIdProblem(binding.instance, binding.instance === contact.uri) ||
    pushBindingProblem(binding) ||
    webPushEndpointProblem(config, binding);
  if (problem) {
    logWarn(
      "push params refused aor=" +
        aor +
        " app=" +
        binding.appId +
        " token=" +
        maskToken(binding.token) +
        ": " +
        problem,
    );
    return;
  }
  const ownership = appOwnershipProblem(config, binding);
  if (ownership) {
    logWarn(
      "push params refused aor=" +
        aor +
        " app=" +
        binding.appId +
        " token=" +
        maskToken(binding.token) +
        ": " +
        ownership,
    );
    // RFC 8599 §5.6.1.1: the proxy cannot push for this binding, which is what 555 says.
    if (binding.pns !== undefined) addOnce(plan.unsupported, binding.pns);
    return;
  }
  if (binding.pns !== undefined) addOnce(plan.featureCaps, binding.pns);
  if (binding.pns === "webpush" && !plan.vapidKey) plan.vapidKey = vapidKeyOf(config, binding.appId);
  plan.records.push(recordOf(aor, binding, rule, userAgent));
}

function recordOf(aor: string, binding: PushBinding, rule: UserAgentRule | null, userAgent: string): DeviceRecord {
  const record: DeviceRecord = {
    aor: aor,
    instance: binding.instance,
    appId: binding.appId,
    provider: binding.provider,
    token: binding.token,
    userAgent: userAgent,
    proxy: receivingProxyUri(),
    registeredAtMs: Date.now(),
    userCaseKept: true,
  };
  if (binding.alertToken) record.alertToken = binding.alertToken;
  if (binding.pushKind) record.pushKind = binding.pushKind;
  if (binding.apnsTopic) record.apnsTopic = binding.apnsTopic;
  if (binding.fcmProjectId) record.fcmProjectId = binding.fcmProjectId;
  if (binding.sandbox) record.sandbox = true;
  if (binding.options) record.options = binding.options;
  if (rule) record.rule = rule.name;
  return record;
}

/**
 * Route PUSHER_REGISTER_BEFORE_SAVE's one call into JavaScript, in the order the three steps had as calls of their
 * own (each costs a jsdt_run, the config read and the Contact read again): pusher_check_refresh_interval (a binding
 * too short for its refresh push: $var(pusher_min_expires), cfg answers 423 and nothing is stored), then
 * pusher_register_devices ($var(pusher_refuse) 1: cfg answers 555), then pusher_plan_refresh. In a cluster a
 * REGISTER that is not refused 423 tells another node holding the AOR's calls first (tellClusterOfRegistration).
 */
export function registerBeforeSave(): void {
  withConfig(function (config: PusherConfig): void {
    let found: RefreshableContact | null = null;
    let minExpires = 0;
    // A failure of the refresh steps stores the devices all the same, as when they were jsdt_run calls of their own.
    try {
      found = refreshableContact(config);
      minExpires = minExpiresOf(config, found);
    } catch (e) {
      logError("refresh push check failed: " + String(e));
      found = null;
    }
    setVar("pusher_min_expires", minExpires);
    if (minExpires > 0) return;
    tellClusterOfRegistration();
    if (registerDevices()) return;
    planRefreshOf(config, found);
  });
}

/** Removes and stores the devices the plan says; `mark`: see saveDevice. */
function applyPlan(plan: RegisterPlan, aor: string, mark: string, authenticatedAor: string): void {
  for (let i = 0; i < plan.removals.length; i++) {
    if (removeDevice(aor, plan.removals[i]))
      logInfo("device removed aor=" + aor + " instance=" + plan.removals[i] + ": de-registered");
  }
  for (let i = 0; i < plan.records.length; i++) {
    const record = plan.records[i];
    if (saveDevice(record, mark, authenticatedAor) === "stored") {
      logInfo(
        "device stored aor=" +
          aor +
          " instance=" +
          record.instance +
          " app=" +
          record.appId +
          " provider=" +
          record.provider +
          " token=" +
          maskToken(record.token),
      );
    }
  }
}

/** Stores the REGISTER's devices; true when it is refused (555: $var(pusher_refuse) 1). */
export function registerDevices(): boolean {
  setVar("pusher_refuse", 0);
  const contactValue = allContactValues();
  if (!contactValue) return false; // a fetch of the bindings: nothing to store
  if (pushedByAnotherProxy()) return false;
  ensureDevicesLoaded();
  const aor = aorOf(pvString("$tU"), pvString("$td"));
  // `*` next to other contacts is refused by the registrar (400): nothing may change for it either.
  // (indexOf first: the regex costs ~10 µs of Duktape time on a usual Contact.)
  if (contactValue.indexOf("*") >= 0 && /(^|,)\s*\*\s*(,|$)/.test(contactValue) && contactValue.trim() !== "*")
    return false;
  if (contactValue.trim() === "*") {
    // RFC 3261 §10.3 step 6: `*` is only valid with Expires: 0; the registrar answers anything else with 400,
    // and a refused REGISTER must not have removed the devices already.
    if ((header("Expires") || "").trim() !== "0") return false;
    const removed = withRowsWrittenOnce(function (): number {
      return removeAllDevices(aor);
    });
    if (removed)
      logInfo("devices removed aor=" + aor + " count=" + removed + ": every binding was removed (Contact: *)");
    return false;
  }
  const config = currentConfig();
  const userAgent = pvString("$ua");
  const expiresHeader = header("Expires");
  const rule = matchUserAgent(config.userAgents, userAgent);
  const plan: RegisterPlan = { records: [], removals: [], featureCaps: [], vapidKey: "", unsupported: [] };
  let contacts = parseContacts(contactValue);
  if (contacts.length > MAX_CONTACTS) {
    logWarn(
      "REGISTER of aor=" +
        aor +
        " has " +
        contacts.length +
        " contacts: the push params of the first " +
        MAX_CONTACTS +
        " only are read",
    );
    contacts = contacts.slice(0, MAX_CONTACTS);
  }
  for (let i = 0; i < contacts.length; i++) planContact(plan, contacts[i], aor, rule, config, userAgent, expiresHeader);

  if (plan.unsupported.length && getNumber(STATE_TABLE, "reject_unsupported") > 0) {
    logInfo(
      "REGISTER of aor=" +
        aor +
        " refused with 555: push service " +
        plan.unsupported.join(", ") +
        " is not configured for its app, or its binding was refused (above)",
    );
    setVar("pusher_refuse", 1);
    return true;
  }
  // A phone's refresh would store and remove nothing: cfg may answer it without the plugin (route
  // PUSHER_INTERNAL_KNOWN_REGISTER) with the same Feature-Caps. Only a REGISTER of one device, with at most one
  // Feature-Caps, is marked (the mark lives on that device's item); de-REGISTERs, queries and refused params
  // always come here, and so does Web Push (markOf has no code for it: its Feature-Caps carries the app's VAPID
  // key).
  // Which AOR the REGISTER proved to be (set by the cfg after its authentication; "*": authentication is off): a
  // token held by another AOR moves only for a REGISTER authenticated for that one (device-store.ts mayTakeToken).
  const authenticatedText = pvString("$avp(pusher_authenticated_aor)");
  const authenticatedAor = authenticatedText === "*" ? "*" : aorOfText(authenticatedText);
  const rememberable = plan.records.length === 1 && !plan.removals.length && plan.featureCaps.length <= 1;
  const mark = rememberable
    ? markOf(pvOwnString("$var(pusher_binding_key)"), plan.featureCaps.length ? plan.featureCaps[0] : "")
    : "";
  // Several changes: each AOR's row is written once, after them all (one change writes it as it goes).
  if (plan.records.length + plan.removals.length > 1) {
    withRowsWrittenOnce(function () {
      applyPlan(plan, aor, mark, authenticatedAor);
    });
  } else {
    applyPlan(plan, aor, mark, authenticatedAor);
  }
  for (let i = 0; i < plan.featureCaps.length; i++) {
    KSR.hdr.append_to_reply(featureCapsHeader(plan.featureCaps[i], plan.vapidKey));
  }
  return false;
}
