// The refresh plan of a binding (refresh-pushes.ts) as text: what the plugin keeps for kamailio/pusher.cfg's fast path,
// which arms it without JavaScript, and the entry the timer reads back. Pure, no KSR: test/kamailio/pusher-cfg.test.ts
// checks that the cfg reads the fields this file writes.

/** What the timer needs to push one binding: which binding, and how long after arming it expires. */
export interface RefreshPlan {
  aor: string;
  addr: string;
  instance: string;
  expiresIn: number;
}

/**
 * A plan as kamailio/pusher.cfg reads it: `<+sip.pnsreg value, 0: none>|<push in, s>|<plan JSON>`; route
 * PUSHER_INTERNAL_ARM_REFRESH arms it as the entry `<now>|<plan text>` (test/kamailio/pusher-cfg.test.ts checks the
 * two agree).
 */
export function refreshPlanText(pnsreg: number, pushIn: number, plan: RefreshPlan): string {
  return pnsreg + "|" + pushIn + "|" + JSON.stringify(plan);
}

/** An armed entry's time and plan; null when it is not one. */
export function parseRefreshEntry(entry: string): { armedAt: number; plan: RefreshPlan } | null {
  const fields = entry.split("|");
  if (fields.length < 4) return null;
  try {
    return { armedAt: Number(fields[0]), plan: JSON.parse(fields.slice(3).join("|")) as RefreshPlan };
  } catch (e) {
    return null;
  }
}
