// Which push params may be stored. A refused binding writes and overwrites nothing (the REGISTER itself is
// answered as usual): a garbage token must never replace a good one. Pure, no KSR.

import { PushProvider } from "../protocol";
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

function problemOf(what: string, value: string | undefined, alphabet: RegExp): string | null {
  if (value === undefined) return null;
  if (value === "") return what + " is empty";
  if (value.length > MAX_PARAM_LENGTH) return what + " is longer than " + MAX_PARAM_LENGTH + " characters";
  if (!alphabet.test(value)) return what + " has characters outside its alphabet";
  return null;
}

function tokenProblem(provider: PushProvider, what: string, token: string | undefined): string | null {
  return problemOf(what, token, TOKEN_ALPHABETS[provider]);
}

/** Why a binding may not be stored, or null when it may. */
export function pushBindingProblem(binding: PushBinding): string | null {
  const problems: (string | null)[] = [
    tokenProblem(binding.provider, "token", binding.token),
    tokenProblem(binding.provider, "alert token", binding.alertToken),
    problemOf("app id", binding.appId, APP_ID_ALPHABET),
    problemOf("APNs topic (pn-param)", binding.apnsTopic, APP_ID_ALPHABET),
    problemOf("Firebase project id (pn-param)", binding.fcmProjectId, APP_ID_ALPHABET),
  ];
  if (binding.options) {
    for (const name in binding.options) {
      if (has(binding.options, name)) problems.push(problemOf(name, binding.options[name], OPTION_ALPHABET));
    }
  }
  for (let i = 0; i < problems.length; i++) if (problems[i]) return problems[i];
  return null;
}
