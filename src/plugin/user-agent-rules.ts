// User-Agent rules: an ordered list, the first rule whose regex matches wins (Kazoo's User-Agents semantics).

import { DEFAULT_PUSH_PARAM_NAMES, PushParamNames, UserAgentRule } from "../config";
import { has } from "./own-key";

// Compiled rules by source, per process: Duktape compiles a regex in ~2 µs, more than testing it.
const compiled: { [source: string]: RegExp | null } = {};

function patternOf(source: string): RegExp | null {
  if (has(compiled, source)) return compiled[source];
  let pattern: RegExp | null = null;
  try {
    pattern = new RegExp(source);
  } catch (e) {
    // validated by the CLI; a hand-edited bad rule must not break REGISTER handling
  }
  compiled[source] = pattern;
  return pattern;
}

export function matchUserAgent(rules: UserAgentRule[], userAgent: string): UserAgentRule | null {
  for (let i = 0; i < rules.length; i++) {
    const pattern = patternOf(rules[i].regex);
    if (pattern && pattern.test(userAgent)) return rules[i];
  }
  return null;
}

/** The Contact params a rule reads legacy bindings from: its `properties`, the rest Kazoo's defaults. */
export function pushParamNamesOf(rule: UserAgentRule | null): PushParamNames {
  const names = rule && rule.properties ? rule.properties : {};
  return {
    appId: names.appId || DEFAULT_PUSH_PARAM_NAMES.appId,
    type: names.type || DEFAULT_PUSH_PARAM_NAMES.type,
    token: names.token || DEFAULT_PUSH_PARAM_NAMES.token,
  };
}

/** Whether a rule lets a device of `appId` be stored (a rule without `appIds` accepts every app). */
export function ruleAcceptsApp(rule: UserAgentRule, appId: string): boolean {
  return !rule.appIds || rule.appIds.indexOf(appId) >= 0;
}
