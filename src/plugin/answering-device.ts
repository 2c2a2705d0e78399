// Which device sent a reply? The 2xx comes from the phone's socket, which usrloc knows as the contact's
// received address (NATed phones) or its URI: matched against the AOR's contacts, it names the device
// instance, so that device is not told its own call was "answered elsewhere".

import { pvString } from "./sip-message";

const PROFILE = "pusher_answer";

function hostPort(uri: string): string {
  const match = /^sips?:(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?/i.exec(uri);
  return match ? match[1].toLowerCase() + ":" + (match[2] || "5060") : "";
}

/** The device instance (as parse-push-params names it) of the AOR's contact at `ip:port`, or null. */
export function instanceAt(aor: string, ip: string, port: string): string | null {
  if (KSR.registrar.reg_fetch_contacts("location", "sip:" + aor, PROFILE) <= 0) return null;
  const source = ip.toLowerCase() + ":" + port;
  let found: string | null = null;
  const count = Number(pvString("$ulc(" + PROFILE + "=>count)"));
  for (let i = 0; i < count && found === null; i++) {
    const addr = pvString("$(ulc(" + PROFILE + "=>addr)[" + i + "])");
    const received = pvString("$(ulc(" + PROFILE + "=>received)[" + i + "])");
    if (hostPort(received || addr) !== source) continue;
    const instance = pvString("$(ulc(" + PROFILE + "=>instance)[" + i + "])").replace(/^<|>$/g, "");
    const regId = pvString("$(ulc(" + PROFILE + "=>regid)[" + i + "])");
    found =
      instance && instance !== "<null>"
        ? instance
        : regId && regId !== "0" && regId !== "<null>"
          ? "reg-id:" + regId
          : addr;
  }
  KSR.registrar.reg_free_contacts(PROFILE);
  return found;
}
