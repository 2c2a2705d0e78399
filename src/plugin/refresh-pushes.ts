// Refresh pushes before a binding expires (RFC 8599 §5.5; docs/refresh-pushes.md). A phone asleep cannot refresh its
// binding; registrations.refreshBeforeSeconds before the binding expires the proxy pushes it (a background push:
// push-targets.ts), and the app registers again. Only RFC 8599 bindings (pn-provider in the Contact URI: any push
// makes such an app REGISTER, §4.2) whose device can take a push that does not ring; never a PushKit-only device,
// never a binding that has expired, at most one push per binding lifetime.
// Cost per REGISTER: the unchanged refresh (no JavaScript, kamailio/pusher.cfg's fast path) reads this binding's plan
// (`plan:<binding key>`) and arms it: an htable increment and write. The plugin makes the plan when it handles the
// REGISTER itself, from the binding's real expiry in usrloc.
// The timer (rtimer, 1 s, route PUSHER_INTERNAL_TIMER) takes what is due each second: htable pusher_refresh holds
// `count:<second>` and `due:<second>:<n>` (`<armed at>|<+sip.pnsreg>|<push in>|<plan JSON>`). After a restart the
// plans are gone with htable, but bindings kept by usrloc (the reference cfg keeps them in a DB: WITH_USRLOCDB) are
// armed again from their expiry (rearmRefreshes).
// RFC 8599 §4.1.4, §5.4: a Contact with the sip.pnsreg feature tag can refresh by itself; the 2xx tells it how long
// before expiry to do so (+sip.pnsreg), and the push comes only when it did not. A REGISTER too short for a push
// before it expires is answered 423 with Min-Expires.

import { PusherConfig } from "../config";
import { DeviceRecord } from "../device-record";
import { maskToken } from "../mask-token";
import { PushRequest } from "../protocol";
import { devicesOf } from "./device-store";
import { pushedLifetimes, recordRefreshPush } from "./refresh-database";
import { logInfo, logWarn } from "./log";
import { has } from "./own-key";
import { contactExpires, parseContacts, ParsedContact } from "./parse-contact";
import { PushBinding, readPushParams } from "./parse-push-params";
import { nonVoipPushDevice } from "./push-targets";
import { relayRememberedPush } from "./sent-pushes";
import { parseRefreshEntry, RefreshPlan, refreshPlanText } from "./refresh-plan";
import { currentConfig } from "./settings";
import {
  DEVICES_TABLE,
  STATE_TABLE,
  STATS_TABLE,
  firstTimeIn,
  getNumber,
  getString,
  remove,
  withLock,
} from "./shared-state";
import { aorOf, header, pvOwnString, pvString, setVar } from "./sip-message";
import { UsrlocBinding, bindingAt, bindingsOf } from "./usrloc-bindings";

/** `count:<second>`, `due:<second>:<n>` (initval 0) and `cursor` (the last second the timer took). */
export const REFRESH_TABLE = "pusher_refresh";
/** `plan:<binding key>` for the fast path, `pushed:<aor>|<addr>` (the expiry last pushed for); autoexpire. */
export const REFRESH_PLANS_TABLE = "pusher_refresh_plans";
/**
 * How much earlier than the push a phone that refreshes by itself is asked to (+sip.pnsreg), and the shortest
 * binding one can be pushed for (Min-Expires): OpenSIPS's pn_pnsreg_interval (130) over pn_trigger_interval (120).
 */
export const SELF_REFRESH_MARGIN_S = 10;
// A push that finds no helper is tried again this much later, while its binding lasts.
const NO_HELPER_RETRY_S = 5;
// A timer that fell behind takes at most this many seconds back (entries older than that are dropped).
const MAX_CATCH_UP_S = 600;
const CONFIG_KEY_OF: { [provider: string]: string } = { apple: "apple", firebase: "firebase", webpush: "webpush" };

/** The +sip.pnsreg value and the Min-Expires of a binding that gets refresh pushes. */
export function selfRefreshSeconds(config: PusherConfig): number {
  return config.registrations.refreshBeforeSeconds + SELF_REFRESH_MARGIN_S;
}

/** Whether a binding's device can take a push that does not ring (push-targets.ts). */
export function takesBackgroundPush(binding: PushBinding): boolean {
  return binding.provider !== "apple" || binding.pushKind === "alert" || !!binding.alertToken;
}

function providerConfigured(config: PusherConfig, binding: PushBinding): boolean {
  for (const appId in config.apps) {
    if (!has(config.apps, appId) || (binding.appId && appId !== binding.appId)) continue;
    if ((config.apps[appId] as { [key: string]: unknown })[CONFIG_KEY_OF[binding.provider]] !== undefined) return true;
  }
  return false;
}

export interface RefreshableContact {
  contact: ParsedContact;
  binding: PushBinding;
}

/**
 * The REGISTER's one contact when it is an RFC 8599 binding (pn-provider in its URI) of a configured app whose
 * device takes a background push, not already pushed for by a proxy nearer the phone (a Feature-Caps in the
 * request); null otherwise.
 */
export function refreshableContact(config: PusherConfig): RefreshableContact | null {
  if (pvOwnString("$hdrc(Contact)") !== "1" || KSR.hdr.is_present("Feature-Caps") > 0) return null;
  // parseContacts keeps its last result: the plugin's other REGISTER steps parse this same Contact.
  const contacts = parseContacts(header("Contact") || "");
  if (contacts.length !== 1 || !has(contacts[0].uriParams, "pn-provider")) return null;
  const reading = readPushParams(contacts[0]);
  if (reading.kind !== "binding" || reading.binding.pns === undefined) return null;
  if (!takesBackgroundPush(reading.binding) || !providerConfigured(config, reading.binding)) return null;
  return { contact: contacts[0], binding: reading.binding };
}

/**
 * REGISTER, before the plugin stores its devices: $var(pusher_min_expires) > 0 when its binding is too short for a
 * refresh push (cfg answers 423 Interval Too Brief with that Min-Expires, and nothing is stored).
 */
export function checkRefreshInterval(): void {
  const config = currentConfig();
  setVar("pusher_min_expires", minExpiresOf(config, refreshableContact(config)));
}

/** checkRefreshInterval's answer for the REGISTER's refreshable contact `found`: its Min-Expires, or 0. */
export function minExpiresOf(config: PusherConfig, found: RefreshableContact | null): number {
  if (!found) return 0;
  const expires = contactExpires(found.contact, header("Expires"));
  const minimum = selfRefreshSeconds(config);
  if (expires <= 0 || expires >= minimum) return 0;
  logInfo(
    "REGISTER of aor=" +
      aorOf(pvString("$tU"), pvString("$td")) +
      " answered 423: expires " +
      expires +
      " s is too short for a refresh push (Min-Expires " +
      minimum +
      ")",
  );
  return minimum;
}

function recordOf(aor: string, instance: string): DeviceRecord | null {
  const devices = devicesOf(aor);
  for (let i = 0; i < devices.length; i++) if (devices[i].instance === instance) return devices[i];
  return null;
}

/**
 * REGISTER, after the plugin stored its devices (not refused): a binding that gets refresh pushes has its reply's
 * `Feature-Caps: *;+sip.pnsreg="<s>"` added when its Contact carries sip.pnsreg, and $var(pusher_refresh_candidate)
 * set for pusher_arm_refresh after save().
 */
export function planRefresh(): void {
  const config = currentConfig();
  planRefreshOf(config, refreshableContact(config));
}

/** planRefresh for the REGISTER's refreshable contact `found`. */
export function planRefreshOf(config: PusherConfig, found: RefreshableContact | null): void {
  setVar("pusher_refresh_candidate", "");
  if (!found || contactExpires(found.contact, header("Expires")) <= 0) return;
  const aor = aorOf(pvString("$tU"), pvString("$td"));
  const record = recordOf(aor, found.binding.instance);
  if (!record || !nonVoipPushDevice(record)) return;
  const pnsreg = has(found.contact.headerParams, "+sip.pnsreg") ? selfRefreshSeconds(config) : 0;
  if (pnsreg) KSR.hdr.append_to_reply('Feature-Caps: *;+sip.pnsreg="' + pnsreg + '"\r\n');
  setVar(
    "pusher_refresh_candidate",
    JSON.stringify({ aor: aor, addr: found.contact.uri, instance: found.binding.instance, pnsreg: pnsreg }),
  );
}

/**
 * REGISTER, after save(), for the candidate planRefresh set: reads the binding's expiry from usrloc (the registrar
 * may have shortened it) and sets $var(pusher_refresh_plan), which route PUSHER_INTERNAL_ARM_REFRESH arms; keeps it
 * as `plan:<binding key>` so that the same REGISTER again, answered without JavaScript, arms it too.
 */
export function armRefresh(): void {
  setVar("pusher_refresh_plan", "");
  let candidate: { aor: string; addr: string; instance: string; pnsreg: number };
  try {
    candidate = JSON.parse(pvString("$var(pusher_refresh_candidate)"));
  } catch (e) {
    return;
  }
  const binding = bindingAt(candidate.aor, candidate.addr);
  if (!binding) return;
  const expiresIn = binding.expires - Math.floor(Date.now() / 1000);
  const pushIn = expiresIn - currentConfig().registrations.refreshBeforeSeconds;
  // The registrar cut it (max_expires): too short for a push now; a push at once would make it register in a loop.
  if (pushIn < 1) return;
  const text = refreshPlanText(candidate.pnsreg, pushIn, {
    aor: candidate.aor,
    addr: binding.addr,
    instance: candidate.instance,
    expiresIn: expiresIn,
  });
  const key = pvString("$var(pusher_binding_key)");
  if (key) KSR.htable.sht_sets(REFRESH_PLANS_TABLE, "plan:" + key, text);
  setVar("pusher_refresh_plan", text);
}

/** Arms one refresh push, as route PUSHER_INTERNAL_ARM_REFRESH does (rearm, retries). */
function arm(nowS: number, pushIn: number, plan: RefreshPlan): void {
  const due = nowS + Math.max(1, pushIn);
  const slot = KSR.htable.sht_inc(REFRESH_TABLE, "count:" + due);
  KSR.htable.sht_sets(REFRESH_TABLE, "due:" + due + ":" + slot, nowS + "|" + refreshPlanText(0, pushIn, plan));
}

function helperConnected(): boolean {
  return getNumber(STATE_TABLE, "helper_connections") > 0;
}

function bindingName(aor: string, addr: string): string {
  return aor + "|" + addr;
}

/** Whether two expiries name one binding lifetime: usrloc and cfg read the clock a second apart at most. */
function sameLifetime(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1;
}

/**
 * Claims the push of the binding lifetime that ends at `expiresAt`: false when it was pushed already (one REGISTER
 * sent twice, a retransmission after its 200 was lost, arms one lifetime twice). Recorded on disk too, for restarts.
 */
function claimLifetime(plan: RefreshPlan, expiresAt: number): boolean {
  const name = bindingName(plan.aor, plan.addr);
  const claimed = withLock(REFRESH_PLANS_TABLE, "pushed:" + name, function () {
    if (sameLifetime(Number(getString(REFRESH_PLANS_TABLE, "pushed:" + name) || 0), expiresAt)) return false;
    KSR.htable.sht_sets(REFRESH_PLANS_TABLE, "pushed:" + name, String(expiresAt));
    return true;
  });
  if (claimed) recordRefreshPush(name, expiresAt);
  return claimed;
}

/** One due entry: pushes its binding when the binding still ends when it was armed for, and its device takes it. */
function fire(entry: string, nowS: number): void {
  const parsed = parseRefreshEntry(entry);
  if (!parsed) return;
  const plan = parsed.plan;
  const expiresAt = parsed.armedAt + plan.expiresIn;
  if (!(expiresAt > nowS)) return;
  // usrloc is the truth: a refresh REGISTER moved the expiry (and armed its own push), a de-REGISTER removed it.
  const binding = bindingAt(plan.aor, plan.addr);
  if (!binding || !sameLifetime(binding.expires, expiresAt)) return;
  const record = recordOf(plan.aor, plan.instance);
  const device = record ? nonVoipPushDevice(record) : null;
  if (!record || !device) return;
  if (!helperConnected()) {
    if (firstTimeIn("refresh-no-helper", 60))
      logWarn("no push helper is connected: refresh pushes wait for it (while their bindings last)");
    if (expiresAt - nowS > NO_HELPER_RETRY_S)
      arm(nowS, NO_HELPER_RETRY_S, {
        aor: plan.aor,
        addr: plan.addr,
        instance: plan.instance,
        expiresIn: expiresAt - nowS,
      });
    return;
  }
  if (!claimLifetime(plan, expiresAt)) return;
  const request: PushRequest = {
    type: "push",
    purpose: "refresh",
    callRef: "",
    callId: "",
    aor: plan.aor,
    device: device,
    caller: { number: "", name: "" },
    proxy: record.proxy,
    // No retry once the binding is gone: the app would register for nothing.
    ringsUntilMs: expiresAt * 1000,
    expiresAtMs: expiresAt * 1000,
  };
  relayRememberedPush(request);
  KSR.htable.sht_inc(STATS_TABLE, "refresh_pushes");
  // No instance in the line: a device without +sip.instance is named by its Contact URI, push token and all.
  logInfo(
    "refresh push requested aor=" +
      plan.aor +
      " app=" +
      device.appId +
      " token=" +
      maskToken(device.token) +
      ": its binding expires in " +
      (expiresAt - nowS) +
      " s",
  );
}

/** The timer, each second: every entry due in a second that has passed. */
export function fireDueRefreshes(): void {
  const nowS = Math.floor(Date.now() / 1000);
  // REGISTERs arm a second after the present or later: every second before this one is complete.
  const last = nowS - 1;
  let cursor = getNumber(REFRESH_TABLE, "cursor");
  if (!cursor || cursor < last - MAX_CATCH_UP_S) cursor = last - MAX_CATCH_UP_S;
  for (let second = cursor + 1; second <= last; second++) {
    const count = getNumber(REFRESH_TABLE, "count:" + second);
    for (let slot = 1; slot <= count; slot++) {
      const key = "due:" + second + ":" + slot;
      const entry = getString(REFRESH_TABLE, key);
      remove(REFRESH_TABLE, key);
      if (entry) fire(entry, nowS);
    }
    if (count) remove(REFRESH_TABLE, "count:" + second);
  }
  if (last > cursor) KSR.htable.sht_seti(REFRESH_TABLE, "cursor", last);
}

/** The AORs of the device records in htable (one item per AOR). */
function deviceAors(): string[] {
  const aors: string[] = [];
  const iterator = "pusher_rearm";
  if (KSR.htable.sht_iterator_start(iterator, DEVICES_TABLE) < 0) return aors;
  while (KSR.htable.sht_iterator_next(iterator) > 0) aors.push(pvString("$shtitkey(" + iterator + ")"));
  KSR.htable.sht_iterator_end(iterator);
  return aors;
}

/** Whether a binding usrloc holds is an RFC 8599 one (pn-provider in its URI). */
function isRfc8599Binding(binding: UsrlocBinding): boolean {
  return /;\s*pn-provider\s*=/i.test(binding.addr);
}

/**
 * Once, after the device records are loaded: arms the refresh push of every binding usrloc kept across the restart
 * (at its expiry minus refreshBeforeSeconds, at once when that has passed), unless its lifetime got its push before
 * the restart. Without usrloc persistence there are none: the phones are pushed for calls, and arm again at their
 * next REGISTER.
 */
export function rearmRefreshes(): void {
  const nowS = Math.floor(Date.now() / 1000);
  const refreshBefore = currentConfig().registrations.refreshBeforeSeconds;
  const pushed = pushedLifetimes(nowS) || {};
  const aors = deviceAors();
  let armed = 0;
  for (let i = 0; i < aors.length; i++) {
    const eligible: { [instance: string]: boolean } = {};
    let any = false;
    const devices = devicesOf(aors[i]);
    for (let j = 0; j < devices.length; j++) {
      if (nonVoipPushDevice(devices[j])) eligible[devices[j].instance] = any = true;
    }
    if (!any) continue;
    const bindings = bindingsOf(aors[i]);
    for (let j = 0; j < bindings.length; j++) {
      const binding = bindings[j];
      if (!has(eligible, binding.instance) || !isRfc8599Binding(binding) || binding.expires <= nowS) continue;
      const name = bindingName(aors[i], binding.addr);
      if (has(pushed, name) && sameLifetime(pushed[name], binding.expires)) {
        KSR.htable.sht_sets(REFRESH_PLANS_TABLE, "pushed:" + name, String(pushed[name]));
        continue;
      }
      const expiresIn = binding.expires - nowS;
      arm(nowS, expiresIn - refreshBefore, {
        aor: aors[i],
        addr: binding.addr,
        instance: binding.instance,
        expiresIn: expiresIn,
      });
      armed++;
    }
  }
  if (armed) logInfo("refresh pushes armed for " + armed + " bindings kept across the restart");
}
