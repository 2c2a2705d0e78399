// A device record: what the plugin stores per device (src/plugin/device-store.ts, htable pusher_devices and the
// sqlite file) and what `pusher devices` lists. Types only: the plugin (Duktape) and the CLI (Node) both read it.

import { PushKind, PushProvider } from "./protocol";

export interface DeviceRecord {
  aor: string;
  instance: string;
  appId: string;
  provider: PushProvider;
  token: string;
  /** Apple two-token form: the alert token next to the VoIP `token`. */
  alertToken?: string;
  pushKind?: PushKind;
  apnsTopic?: string;
  fcmProjectId?: string;
  /** Registered with `apns.dev`: a sandbox token. */
  sandbox?: boolean;
  /** Linphone's pn-msg-str, pn-call-str, pn-call-snd, pn-silent, pn-timeout as sent. */
  options?: { [name: string]: string };
  /** The User-Agent rule the device was stored through (its strategy and timers apply), if any. */
  rule?: string;
  userAgent: string;
  /** SIP URI of the socket the device registered through: the push's `proxy`. */
  proxy: string;
  /** Last REGISTER that wrote the record; retention (devices.retentionDays) counts from it. */
  registeredAtMs: number;
  /** Keyed by its AOR with the user part's case kept (RFC 3261 §19.1.4); absent on records written before, whose
   * key is all lower-cased (src/plugin/device-store.ts legacyDevices). */
  userCaseKept?: boolean;
}
