// User-Agent rules: an ordered list, the first rule whose regex matches wins (Kazoo's User-Agents semantics).

import { DEFAULT_PUSH_PARAM_NAMES, PushParamNames, UserAgentRule } from "../config";

export function matchUserAgent(rules: UserAgentRule[], userAgent: string): UserAgentRule | null {
  for (let i = 0; i < rules.length; i++) {
    let pattern: RegExp;
    try {
      pattern = new RegExp(rules[i].regex);
    } catch (e) {
      continue; // validated by the CLI; a hand-edited bad rule must not break REGISTER handling
    }
    if (pattern.test(userAgent)) return rules[i];
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
