// User-Agent rules: an ordered list, the first rule whose regex matches wins (Kazoo's User-Agents semantics).

import { UserAgentRule } from "../config";

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
