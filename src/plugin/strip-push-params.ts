// Push params never leave the proxy (RFC 8599 §4.1: pn parameters do not belong in requests other than REGISTER;
// §13: they must be kept from other users). After lookup() the R-URI of each branch is a phone's Contact URI,
// push params included: route PUSHER_STRIP_PUSH_PARAMS (kamailio/pusher.cfg) runs this in the branch_route of
// every request the plugin relays (the INVITE after lookup(), the delivered held call, tsilo's late forks).

import { DEFAULT_PUSH_PARAM_NAMES } from "../config";
import { currentConfig } from "./settings";
import { pvString } from "./sip-message";

// RFC 8599's and Linphone's params all start with `pn-`; Kazoo's defaults and its one-time token do not.
const FIXED_NAMES = [
  DEFAULT_PUSH_PARAM_NAMES.appId,
  DEFAULT_PUSH_PARAM_NAMES.type,
  DEFAULT_PUSH_PARAM_NAMES.token,
  "x-token-reg",
];

/** Whether a URI param (lower-cased name) carries push data: `pn-*`, Kazoo's, or a User-Agent rule's `properties`. */
export function isPushParam(name: string, ruleNames: string[]): boolean {
  return name.substring(0, 3) === "pn-" || FIXED_NAMES.indexOf(name) >= 0 || ruleNames.indexOf(name) >= 0;
}

/**
 * `uri` without its push params; every other param, the headers part (`?…`) and the order are kept. Returns `uri`
 * itself when it has none.
 */
export function withoutPushParams(uri: string, ruleNames: string[]): string {
  // URI params follow the host: a user part may hold `;` itself (RFC 3261 §25.1 user-unreserved).
  const paramsAt = uri.indexOf(";", uri.indexOf("@") + 1);
  if (paramsAt < 0) return uri;
  const headersAt = uri.indexOf("?", paramsAt);
  const params = uri.substring(paramsAt + 1, headersAt < 0 ? uri.length : headersAt).split(";");
  const kept: string[] = [];
  for (let i = 0; i < params.length; i++) {
    const equals = params[i].indexOf("=");
    const name = (equals < 0 ? params[i] : params[i].substring(0, equals)).replace(/^\s+|\s+$/g, "").toLowerCase();
    if (!isPushParam(name, ruleNames)) kept.push(params[i]);
  }
  if (kept.length === params.length) return uri;
  return (
    uri.substring(0, paramsAt) +
    (kept.length ? ";" + kept.join(";") : "") +
    (headersAt < 0 ? "" : uri.substring(headersAt))
  );
}

/** The push param names User-Agent rules configure (Kazoo's `properties`), lower-case as the parser reads them. */
export function ruleParamNames(): string[] {
  const names: string[] = [];
  const rules = currentConfig().userAgents;
  for (let i = 0; i < rules.length; i++) {
    const properties = rules[i].properties;
    if (!properties) continue;
    if (properties.appId) names.push(properties.appId);
    if (properties.type) names.push(properties.type);
    if (properties.token) names.push(properties.token);
  }
  return names;
}

/** branch_route (any route where $ru is the next hop's URI): removes the push params from $ru. */
export function stripPushParams(): void {
  const uri = pvString("$ru");
  const stripped = withoutPushParams(uri, ruleParamNames());
  if (stripped !== uri) KSR.pv.sets("$ru", stripped);
}
