// Which push params may be stored. A refused binding writes and overwrites nothing (the REGISTER itself is
// answered as usual): a garbage token must never replace a good one. Pure, no KSR.

import { PushBinding } from "./parse-push-params";
import { has } from "./own-key";

/** No token, app id or param of any provider comes near this; longer is an attack or a bug. */
export const MAX_PARAM_LENGTH = 4096;

// Token alphabets. APNs tokens are hex; letters and single inner spaces are allowed because Kazoo's own
// sample token has them (parse-contact decodes the %20 that repair-contact puts in). FCM registration tokens
// are base64url with `:` (and legacy GCM ones `+/=.`). Web Push tokens are https subscription URLs (RFC 8030).
const TOKEN_ALPHABETS: { [provider: string]: RegExp } = {
  apple: /^[0-9A-Za-z]+( [0-9A-Za-z]+)*$/,
  firebase: /^[0-9A-Za-z_:.+\/=-]+$/,
  webpush: /^https:\/\/[0-9A-Za-z._~:\/?#\[\]@!$&'()*+,;=%-]+$/,
};
// Bundle ids, Android package names, Firebase project ids.
const APP_ID_ALPHABET = /^[0-9A-Za-z._-]+$/;
// Linphone's option values are localisation keys, sound file names, flags and seconds.
const OPTION_ALPHABET = /^[0-9A-Za-z._:\/+=-]+$/;

/** Instance ids (+sip.instance, reg-id) and app ids are names, logged and listed: short and printable. */
export const MAX_ID_LENGTH = 256;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

// Duktape's own built-in (https://duktape.org/guide.html#builtin-duktape): absent in Node, where the unit tests run.
declare const Duktape: { enc(format: "jx", value: string): string } | undefined;

/**
 * Whether `text` is printable ASCII, not empty. Duktape's JX encoder escapes natively every other character (and
 * `"`, `\`): text it leaves as long as it was, plus its quotes, is; the regex decides the rest, at twice the cost.
 */
function isPrintableAscii(text: string): boolean {
  if (text && typeof Duktape !== "undefined" && Duktape.enc("jx", text).length === text.length + 2) return true;
  return PRINTABLE_ASCII.test(text);
}

/**
 * Why a device's instance id (parse-push-params deviceInstance) may not key its record, or null. A Contact without
 * +sip.instance and reg-id is keyed by its URI (`keyedByUri`), which may carry a long token: only its alphabet is
 * checked (the cfg's PUSHER_MAX_CONTACT_BYTES bounds its length).
 */
export function instanceIdProblem(instance: string, keyedByUri: boolean): string | null {
  if (!isPrintableAscii(instance)) return "instance id has characters outside printable ASCII";
  if (!keyedByUri && instance.length > MAX_ID_LENGTH)
    return "instance id is longer than " + MAX_ID_LENGTH + " characters";
  return null;
}

function problemOf(what: string, value: string | undefined, alphabet: RegExp): string | null {
  if (value === undefined) return null;
  if (value === "") return what + " is empty";
  if (value.length > MAX_PARAM_LENGTH) return what + " is longer than " + MAX_PARAM_LENGTH + " characters";
  if (!alphabet.test(value)) return what + " has characters outside its alphabet";
  return null;
}

/** Why a binding may not be stored, or null when it may: the first problem, in this order. */
export function pushBindingProblem(binding: PushBinding): string | null {
  // One check after the other, each only for a param that is there: a list of every check's answer cost Duktape a
  // call per absent param (docs/benchmarks.md).
  const tokenAlphabet = TOKEN_ALPHABETS[binding.provider];
  let problem = problemOf("token", binding.token, tokenAlphabet);
  if (!problem && binding.alertToken !== undefined)
    problem = problemOf("alert token", binding.alertToken, tokenAlphabet);
  if (!problem) problem = problemOf("app id", binding.appId, APP_ID_ALPHABET);
  if (!problem && binding.appId.length > MAX_ID_LENGTH)
    problem = "app id is longer than " + MAX_ID_LENGTH + " characters";
  if (!problem && binding.apnsTopic !== undefined)
    problem = problemOf("APNs topic (pn-param)", binding.apnsTopic, APP_ID_ALPHABET);
  if (!problem && binding.fcmProjectId !== undefined)
    problem = problemOf("Firebase project id (pn-param)", binding.fcmProjectId, APP_ID_ALPHABET);
  if (!problem && binding.options) {
    for (const name in binding.options) {
      if (has(binding.options, name)) problem = problemOf(name, binding.options[name], OPTION_ALPHABET);
      if (problem) break;
    }
  }
  return problem;
}
