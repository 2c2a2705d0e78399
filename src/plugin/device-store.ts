// Device records in htable, one item per AOR holding every device of that AOR (so a call reads one item).

import { PushProvider } from "../protocol";
import { DEVICES_TABLE, getJson, remove, setJson, withLock } from "./shared-state";

export interface DeviceRecord {
  aor: string;
  instance: string;
  appId: string;
  provider: PushProvider;
  token: string;
  userAgent: string;
  /** SIP URI of the socket the device registered through: the push's `proxy`. */
  proxy: string;
  registeredAtMs: number;
}

type DevicesOfAor = { [instance: string]: DeviceRecord };

export function devicesOf(aor: string): DeviceRecord[] {
  const devices = getJson<DevicesOfAor>(DEVICES_TABLE, aor);
  const list: DeviceRecord[] = [];
  if (!devices) return list;
  for (const instance in devices) {
    if (Object.prototype.hasOwnProperty.call(devices, instance)) list.push(devices[instance]);
  }
  return list;
}

function sameBinding(a: DeviceRecord, b: DeviceRecord): boolean {
  return a.appId === b.appId && a.provider === b.provider && a.token === b.token && a.userAgent === b.userAgent && a.proxy === b.proxy;
}

/** Stores or replaces the record of one device; returns false when nothing changed. */
export function saveDevice(record: DeviceRecord): boolean {
  return withLock(DEVICES_TABLE, record.aor, function () {
    const devices = getJson<DevicesOfAor>(DEVICES_TABLE, record.aor) || {};
    const existing = Object.prototype.hasOwnProperty.call(devices, record.instance) ? devices[record.instance] : null;
    if (existing && sameBinding(existing, record)) return false;
    devices[record.instance] = record;
    setJson(DEVICES_TABLE, record.aor, devices);
    return true;
  });
}

/** Removes one device's record (e.g. its token is dead); returns true when there was one. */
export function removeDevice(aor: string, instance: string): boolean {
  return withLock(DEVICES_TABLE, aor, function () {
    const devices = getJson<DevicesOfAor>(DEVICES_TABLE, aor);
    if (!devices || !Object.prototype.hasOwnProperty.call(devices, instance)) return false;
    delete devices[instance];
    let left = false;
    for (const key in devices) if (Object.prototype.hasOwnProperty.call(devices, key)) left = true;
    if (left) setJson(DEVICES_TABLE, aor, devices);
    else remove(DEVICES_TABLE, aor);
    return true;
  });
}
