// Reads Kazoo-style push params (`app-id`, `pn-tok`, `pn-type`) from a parsed contact.
// Pure, no KSR. URI params are searched first, then header params (Kazoo searches both).

import { PushProvider } from "../protocol";
import { ParsedContact } from "./parse-contact";

export interface PushBinding {
  appId: string;
  provider: PushProvider;
  token: string;
  /** Device instance within the AOR: `+sip.instance`, else `reg-id`, else the contact URI. */
  instance: string;
}

// Kazoo routes `google` and `android` to its firebase module.
const PROVIDER_ALIASES: { [pnType: string]: PushProvider } = {
  apple: "apple",
  firebase: "firebase",
  google: "firebase",
  android: "firebase",
};

function param(contact: ParsedContact, name: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(contact.uriParams, name)) return contact.uriParams[name];
  if (Object.prototype.hasOwnProperty.call(contact.headerParams, name)) return contact.headerParams[name];
  return undefined;
}

/** The device instance of a contact, used as the device's key within its AOR. */
export function deviceInstance(contact: ParsedContact): string {
  const instance = contact.headerParams["+sip.instance"];
  if (instance) return instance.replace(/^<|>$/g, "");
  const regId = contact.headerParams["reg-id"];
  if (regId) return "reg-id:" + regId;
  return contact.uri;
}

/** The push binding a contact carries, or null when it has none or an incomplete one. */
export function parsePushParams(contact: ParsedContact): PushBinding | null {
  const appId = param(contact, "app-id");
  const token = param(contact, "pn-tok");
  const pnType = param(contact, "pn-type");
  if (!appId || !token || !pnType) return null;
  const type = pnType.toLowerCase();
  if (!Object.prototype.hasOwnProperty.call(PROVIDER_ALIASES, type)) return null;
  return { appId: appId, provider: PROVIDER_ALIASES[type], token: token, instance: deviceInstance(contact) };
}
