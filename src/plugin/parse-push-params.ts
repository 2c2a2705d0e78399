// Reads the push params of one parsed contact, in every dialect phones use. Pure, no KSR; URI params are
// searched first, then header params (Kazoo searches both), values already URL-decoded by parse-contact.
//   RFC 8599:  pn-provider (apns, fcm, webpush), pn-prid, pn-param. No User-Agent rule needed.
//   Linphone:  RFC 8599 plus `apns.dev` (sandbox) and Apple's two-token pn-prid `<tok>:remote&<tok>:voip`;
//              legacy pn-type/pn-tok/app-id plus pn-msg-str, pn-call-str, pn-call-snd, pn-silent, pn-timeout.
//   Kazoo:     app-id, pn-tok, pn-type, the names configurable per User-Agent rule (Kazoo's `properties`).
// Whether a value is acceptable (length, alphabet) is validate-push-params' concern, not this file's.

import { DEFAULT_PUSH_PARAM_NAMES, PushParamNames } from "../config";
import { PushKind, PushProvider } from "../protocol";
import { ParsedContact } from "./parse-contact";
import { has } from "./own-key";

export interface PushBinding {
  appId: string;
  provider: PushProvider;
  /** The token calls are pushed to: the VoIP token when an Apple device gave one. */
  token: string;
  /** Device instance within the AOR: `+sip.instance`, else `reg-id`, else the contact URI. */
  instance: string;
  /** RFC 8599 only: `pn-provider` as the phone sent it (lower-cased), echoed in Feature-Caps. */
  pns?: string;
  /** Apple, RFC 8599 or two-token form: which kind of push `token` takes. Absent: VoIP (Kazoo). */
  pushKind?: PushKind;
  /** Apple two-token form: the alert (`:remote`) token next to the VoIP one, for alerts. */
  alertToken?: string;
  /** RFC 8599 apns: the bundle id from pn-param (team id and service removed). */
  apnsTopic?: string;
  /** RFC 8599 fcm: the Firebase project id from pn-param. */
  fcmProjectId?: string;
  /** Linphone's `pn-provider=apns.dev`: a sandbox token. */
  sandbox?: boolean;
  /** Linphone's payload and timing params (pn-msg-str, pn-call-str, pn-call-snd, pn-silent, pn-timeout). */
  options?: { [name: string]: string };
}

/** What a contact says about push. */
export type PushParamsReading =
  | { kind: "none" }
  | { kind: "binding"; binding: PushBinding }
  /** RFC 8599 §4.1.5: pn-provider without pn-prid asks which services the proxy supports ("" = any). */
  | { kind: "query"; pns: string }
  /** A pn-provider this proxy has never heard of: RFC 8599's "not supported" (555), not malformed. */
  | { kind: "unsupported"; pns: string }
  /** Push params that cannot be understood; `token` (maybe "") for the masked warning. */
  | { kind: "refused"; problem: string; token: string };

// Kazoo routes `google` and `android` to its firebase module.
const LEGACY_TYPES: { [pnType: string]: PushProvider } = {
  apple: "apple",
  firebase: "firebase",
  google: "firebase",
  android: "firebase",
};

// RFC 8599 §10-12, plus Linphone's `apns.dev` for sandbox tokens.
const RFC8599_PROVIDERS: { [pns: string]: PushProvider } = {
  apns: "apple",
  "apns.dev": "apple",
  fcm: "firebase",
  webpush: "webpush",
};

/** Linphone's extra params, kept with the record for the push payload and timing. */
export const LINPHONE_OPTIONS = ["pn-msg-str", "pn-call-str", "pn-call-snd", "pn-silent", "pn-timeout"];

function param(contact: ParsedContact, name: string): string | undefined {
  // A plain read first: most names asked for are absent, and has() is a call (Duktape calls cost).
  if (contact.uriParams[name] !== undefined && has(contact.uriParams, name)) return contact.uriParams[name];
  if (contact.headerParams[name] !== undefined && has(contact.headerParams, name)) return contact.headerParams[name];
  return undefined;
}

/** The device instance of a contact, used as the device's key within its AOR. */
export function deviceInstance(contact: ParsedContact): string {
  const instance = contact.headerParams["+sip.instance"];
  if (instance) {
    // Without the angle brackets (a regex replace costs Duktape several µs per REGISTER).
    const from = instance.charAt(0) === "<" ? 1 : 0;
    const to =
      instance.length > from && instance.charAt(instance.length - 1) === ">" ? instance.length - 1 : instance.length;
    return instance.substring(from, to);
  }
  const regId = contact.headerParams["reg-id"];
  if (regId) return "reg-id:" + regId;
  return contact.uri;
}

interface AppleTokens {
  voip?: string;
  remote?: string;
  plain?: string;
}

/** Apple's pn-prid/pn-tok: one token, or Linphone's `<tok>:remote&<tok>:voip`; null when malformed. */
function splitAppleTokens(value: string): AppleTokens | null {
  if (value.indexOf(":") < 0) return { plain: value };
  const tokens: AppleTokens = {};
  const parts = value.split("&");
  for (let i = 0; i < parts.length; i++) {
    const colon = parts[i].lastIndexOf(":");
    const service = parts[i].substring(colon + 1);
    const token = parts[i].substring(0, colon);
    if (colon <= 0 || (service !== "voip" && service !== "remote")) return null;
    const byService = tokens as { [service: string]: string };
    if (byService[service] !== undefined) return null;
    byService[service] = token;
  }
  return tokens;
}

function readOptions(contact: ParsedContact, binding: PushBinding): void {
  for (let i = 0; i < LINPHONE_OPTIONS.length; i++) {
    const value = param(contact, LINPHONE_OPTIONS[i]);
    if (value === undefined) continue;
    if (!binding.options) binding.options = {};
    binding.options[LINPHONE_OPTIONS[i]] = value;
  }
}

/** Fills token/pushKind/alertToken of an Apple binding; `service` is pn-param's (voip, remote, both, or ""). */
function applyAppleTokens(binding: PushBinding, tokens: AppleTokens, service: string, rfc: boolean): void {
  if (tokens.plain !== undefined) {
    binding.token = tokens.plain;
    // RFC 8599: `TeamID.BundleID.voip` is a VoIP token; without the suffix an alert token. Kazoo: VoIP.
    if (rfc) binding.pushKind = service.indexOf("voip") >= 0 ? "voip" : "alert";
    return;
  }
  if (tokens.voip !== undefined) {
    binding.token = tokens.voip;
    binding.pushKind = "voip";
    if (tokens.remote !== undefined) binding.alertToken = tokens.remote;
  } else {
    binding.token = tokens.remote as string;
    binding.pushKind = "alert";
  }
}

function readRfc8599(contact: ParsedContact, pnsValue: string): PushParamsReading {
  const pns = pnsValue.toLowerCase();
  const prid = param(contact, "pn-prid");
  if (prid === undefined) return { kind: "query", pns: pns };
  if (!has(RFC8599_PROVIDERS, pns)) return { kind: "unsupported", pns: pns };
  const provider = RFC8599_PROVIDERS[pns];
  const pnParam = param(contact, "pn-param");
  const appIdParam = param(contact, "app-id");
  const binding: PushBinding = {
    appId: "",
    provider: provider,
    token: prid,
    instance: deviceInstance(contact),
    pns: pns,
  };
  if (provider === "apple") {
    if (!pnParam) return { kind: "refused", problem: "pn-param (TeamID.BundleID) is missing for " + pns, token: prid };
    // TeamID.BundleID[.service]: the team id is the first label, the service (voip, remote, remote&voip) the last.
    const labels = pnParam.split(".");
    let service = "";
    if (labels.length > 2 && /^(voip|remote|remote&voip|voip&remote)$/.test(labels[labels.length - 1]))
      service = labels.pop() as string;
    if (labels.length < 2 || !labels[0])
      return {
        kind: "refused",
        problem: "pn-param " + JSON.stringify(pnParam) + " is not TeamID.BundleID",
        token: prid,
      };
    const tokens = splitAppleTokens(prid);
    if (!tokens)
      return { kind: "refused", problem: "pn-prid is neither a token nor <token>:remote&<token>:voip", token: prid };
    applyAppleTokens(binding, tokens, service, true);
    binding.apnsTopic = labels.slice(1).join(".");
    binding.appId = appIdParam !== undefined ? appIdParam : binding.apnsTopic;
    if (pns === "apns.dev") binding.sandbox = true;
  } else if (provider === "firebase") {
    if (pnParam !== undefined) binding.fcmProjectId = pnParam;
    binding.appId = appIdParam !== undefined ? appIdParam : pnParam || "";
    if (!binding.appId)
      return { kind: "refused", problem: "pn-param (Firebase project id) is missing for fcm", token: prid };
  } else {
    // webpush: RFC 8599 §12 forbids pn-param; the app comes from app-id or the config (register-before-save).
    binding.appId = appIdParam || "";
  }
  readOptions(contact, binding);
  return { kind: "binding", binding: binding };
}

function readLegacy(contact: ParsedContact, names: PushParamNames): PushParamsReading {
  const token = param(contact, names.token);
  if (token === undefined) return { kind: "none" };
  const appId = param(contact, names.appId);
  const type = (param(contact, names.type) || "").toLowerCase();
  if (!has(LEGACY_TYPES, type)) {
    return {
      kind: "refused",
      problem: names.type + " " + JSON.stringify(type) + " is not apple, firebase, google or android",
      token: token,
    };
  }
  if (appId === undefined) return { kind: "refused", problem: names.appId + " is missing", token: token };
  const binding: PushBinding = {
    appId: appId,
    provider: LEGACY_TYPES[type],
    token: token,
    instance: deviceInstance(contact),
  };
  if (binding.provider === "apple") {
    const tokens = splitAppleTokens(token);
    if (tokens && tokens.plain === undefined) applyAppleTokens(binding, tokens, "", false);
  }
  readOptions(contact, binding);
  return { kind: "binding", binding: binding };
}

/** The first push param of `names` the contact gives twice with different values, or null. */
function conflictingParam(contact: ParsedContact, names: string[]): string | null {
  for (let i = 0; i < names.length; i++) if (contact.conflicts.indexOf(names[i]) >= 0) return names[i];
  return null;
}

/** Reads a contact's push params; `names` are a User-Agent rule's legacy param names. */
export function readPushParams(contact: ParsedContact, names?: PushParamNames): PushParamsReading {
  const legacy = names || DEFAULT_PUSH_PARAM_NAMES;
  // Most contacts have no conflicting param: no list of names to build and search (Duktape: ~35 000 instructions).
  const conflict =
    contact.conflicts.length > 0 &&
    conflictingParam(contact, [
      "pn-provider",
      "pn-prid",
      "pn-param",
      "app-id",
      legacy.appId,
      legacy.type,
      legacy.token,
    ]);
  if (conflict) {
    const token = param(contact, "pn-prid") || param(contact, legacy.token) || "";
    return { kind: "refused", problem: conflict + " is given twice with different values", token: token };
  }
  const pns = param(contact, "pn-provider");
  if (pns !== undefined) return readRfc8599(contact, pns);
  return readLegacy(contact, names || DEFAULT_PUSH_PARAM_NAMES);
}

/** The push binding a contact carries, or null when it has none, an incomplete or an unknown one. */
export function parsePushParams(contact: ParsedContact, names?: PushParamNames): PushBinding | null {
  const reading = readPushParams(contact, names);
  return reading.kind === "binding" ? reading.binding : null;
}
