// An AOR's bindings as usrloc holds them (registrar's reg_fetch_contacts into $ulc): where a stored MESSAGE is
// delivered (the binding of the phone that just registered) and what a refresh push checks (the binding it was
// armed for still expires then). usrloc is the truth about bindings: a refresh REGISTER moves the expiry there.

import { pvString } from "./sip-message";

// usrloc's domain in kamailio/kamailio.cfg (save("location"), lookup("location")), as invite-flow.ts reads it.
const LOCATION_TABLE = "location";
const PROFILE = "pusher";

export interface UsrlocBinding {
  /** The Contact URI as the phone registered it. */
  addr: string;
  /** `sip:<ip>:<port>` the REGISTER came from when the phone is behind NAT (nathelper's received), else "". */
  received: string;
  /** The proxy's socket the binding is reached through, `proto:ip:port`. */
  socket: string;
  /** Epoch seconds. */
  expires: number;
  /** The device instance as parse-push-params.ts deviceInstance names it: +sip.instance, reg-id or the URI. */
  instance: string;
}

function field(name: string, index: number): string {
  return pvString("$(ulc(" + PROFILE + "=>" + name + ")[" + index + "])");
}

/** The device instance a binding stands for, named as a device record names it. */
function instanceOf(addr: string, instance: string, regId: string): string {
  const bare = instance.replace(/^"|"$/g, "");
  if (bare)
    return bare.charAt(0) === "<" && bare.charAt(bare.length - 1) === ">" ? bare.substring(1, bare.length - 1) : bare;
  if (regId && regId !== "0") return "reg-id:" + regId;
  return addr;
}

/** Every binding usrloc holds for `aor` (`user@domain`). */
export function bindingsOf(aor: string): UsrlocBinding[] {
  const found: UsrlocBinding[] = [];
  if (KSR.registrar.reg_fetch_contacts(LOCATION_TABLE, "sip:" + aor, PROFILE) <= 0) return found;
  const count = Number(pvString("$ulc(" + PROFILE + "=>count)"));
  for (let i = 0; i < count; i++) {
    const addr = field("addr", i);
    found.push({
      addr: addr,
      received: field("received", i),
      socket: field("socket", i),
      expires: Number(field("expires", i)),
      instance: instanceOf(addr, field("instance", i), field("regid", i)),
    });
  }
  KSR.registrar.reg_free_contacts(PROFILE);
  return found;
}

/** The binding whose Contact URI is `addr`, or null. */
export function bindingAt(aor: string, addr: string): UsrlocBinding | null {
  const bindings = bindingsOf(aor);
  for (let i = 0; i < bindings.length; i++) if (bindings[i].addr === addr) return bindings[i];
  return null;
}
