// REGISTER, before authentication (route PUSHER_REGISTER_BEFORE_AUTH; register-before-save.ts and
// register-after-save.ts come later). Kazoo's fast re-registration: each held call's push carries a one-time
// `registration-token`; the woken app may present it on its REGISTER (header X-Token-Reg, or Contact URI/header
// param x-token-reg). A token is valid once, only for the AOR it was issued for, and only for
// calls.registrationTokenSeconds. Unlike Kazoo (where a token mapped to `1`, so any REGISTER bearing one was saved
// for whatever To-URI it named), the token is bound to its AOR. Whether a valid token may skip digest auth is the
// cfg knob PUSHER_TOKEN_SKIPS_AUTH.

import { maskToken } from "../mask-token";
import { logInfo, logWarn } from "./log";
import { parseContacts } from "./parse-contact";
import { currentConfig } from "./settings";
import { REGISTRATION_TOKENS_TABLE, getJson, remove, withLock } from "./shared-state";
import { aorOf, header, pvString, setVar } from "./sip-message";

interface IssuedToken {
  aor: string;
  expiresAtMs: number;
}

function tokenKey(token: string): string {
  return "regtoken:" + token;
}

/** A new token for `aor`: 122 random bits from libuuid ($uuid(g) of the uuid module), never Math.random. */
export function issueRegistrationToken(aor: string): string {
  const token = pvString("$uuid(g)");
  const lifetimeSeconds = currentConfig().calls.registrationTokenSeconds;
  const issued: IssuedToken = { aor: aor, expiresAtMs: Date.now() + lifetimeSeconds * 1000 };
  // htable expiry frees it even if never used (coarse: the htable timer runs every 20 s), expiresAtMs decides.
  KSR.htable.sht_setxs(REGISTRATION_TOKENS_TABLE, tokenKey(token), JSON.stringify(issued), lifetimeSeconds + 1);
  return token;
}

/** A call's token dies with the call: it must not outlive what it was issued for. */
export function forgetRegistrationToken(token: string): void {
  remove(REGISTRATION_TOKENS_TABLE, tokenKey(token));
}

/** The token a REGISTER presents, or "" (header first, then the Contact's URI and header params). */
function presentedToken(): string {
  const fromHeader = header("X-Token-Reg");
  if (fromHeader) return fromHeader.trim();
  const contact = header("Contact");
  const contacts = contact ? parseContacts(contact) : [];
  for (let i = 0; i < contacts.length; i++) {
    const token = contacts[i].uriParams["x-token-reg"] || contacts[i].headerParams["x-token-reg"];
    if (token) return token;
  }
  return "";
}

/**
 * request_route, REGISTER, before authentication: $var(pusher_token_valid) 1 when the REGISTER presents a token
 * issued for its own AOR, unused and unexpired; the token is then used up. Anything else presented is refused
 * (logged) and the REGISTER goes through normal authentication.
 */
export function checkRegistrationToken(): void {
  setVar("pusher_token_valid", 0);
  const token = presentedToken();
  if (!token) return;
  const aor = aorOf(pvString("$tU"), pvString("$td"));
  const valid = withLock(REGISTRATION_TOKENS_TABLE, tokenKey(token), function () {
    const issued = getJson<IssuedToken>(REGISTRATION_TOKENS_TABLE, tokenKey(token));
    if (!issued || issued.aor !== aor || issued.expiresAtMs < Date.now()) return false;
    remove(REGISTRATION_TOKENS_TABLE, tokenKey(token));
    return true;
  });
  if (valid) {
    logInfo("registration token accepted for aor=" + aor);
    setVar("pusher_token_valid", 1);
  } else {
    logWarn(
      "registration token " +
        maskToken(token) +
        " refused for aor=" +
        aor +
        ": unknown, used, expired or issued for another AOR",
    );
  }
}
