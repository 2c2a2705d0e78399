// Device records: htable `pusher_devices` (one item per AOR holding every device of that AOR, so a call
// reads one item), written through to disk (device-database) on every change, loaded from it once after
// Kamailio starts. The item may start with marks of REGISTERs already applied (saveDevice's `mark`): cfg answers
// the same REGISTER again without JS; any change to the AOR's devices drops them. `pusher_tokens` maps each token to the device holding it, so a token that shows up
// under another AOR or instance moves there (a phone re-provisioned to another account keeps one record).

import { DeviceRecord } from "../device-record";
import { PushDevice } from "../protocol";
import { createSchema, deleteAor, readAll, writeAor } from "./device-database";
import { logError, logInfo } from "./log";
import { currentConfig } from "./settings";
import { DEVICES_TABLE, STATE_TABLE, TOKENS_TABLE, getJson, getNumber, getString, remove, setJson, withLock } from "./shared-state";
import { has } from "./own-key";
import { withMark } from "./register-marks";

type DevicesOfAor = { [instance: string]: DeviceRecord };

const DAY_MS = 24 * 3600 * 1000;
// An unchanged re-REGISTER writes nothing, except to move registeredAtMs once a day: retention is counted
// from the last REGISTER to within a day, for one write per device per day at most.
const REFRESH_AFTER_MS = DAY_MS;
const LOADED_KEY = "devices_loaded";

function retentionMs(): number {
  return currentConfig().devices.retentionDays * DAY_MS;
}

function isRetained(record: DeviceRecord, nowMs: number): boolean {
  return record.registeredAtMs + retentionMs() > nowMs;
}

interface AorItem {
  devices: DevicesOfAor;
  marks: string;
}

/** The AOR's devices still within retention, and the marks ahead of them. */
function readAor(aor: string, nowMs: number): AorItem {
  const value = getString(DEVICES_TABLE, aor);
  const start = value === null ? -1 : value.indexOf("{");
  let devices: DevicesOfAor = {};
  try {
    if (start >= 0) devices = JSON.parse((value as string).substring(start)) as DevicesOfAor;
  } catch (e) {
    devices = {};
  }
  for (const instance in devices) {
    if (has(devices, instance) && !isRetained(devices[instance], nowMs)) delete devices[instance];
  }
  return { devices: devices, marks: start > 0 ? (value as string).substring(0, start) : "" };
}

function liveDevices(aor: string, nowMs: number): DevicesOfAor {
  return readAor(aor, nowMs).devices;
}

/**
 * Writes the AOR's devices to htable and disk (or removes both when none is left). Call under its lock. `marks`
 * go ahead of them in htable: none unless the REGISTER that made this change is marked (any change drops the
 * others).
 */
function storeAor(aor: string, devices: DevicesOfAor, marks?: string): void {
  let lastRegisteredAtMs = 0;
  for (const instance in devices) {
    if (has(devices, instance) && devices[instance].registeredAtMs > lastRegisteredAtMs) lastRegisteredAtMs = devices[instance].registeredAtMs;
  }
  if (!lastRegisteredAtMs) {
    remove(DEVICES_TABLE, aor);
    deleteAor(aor);
    return;
  }
  const json = JSON.stringify(devices);
  KSR.htable.sht_sets(DEVICES_TABLE, aor, (marks || "") + json);
  writeAor(aor, json, (lastRegisteredAtMs + retentionMs()) / 1000);
}

function tokensOf(record: DeviceRecord): string[] {
  const keys = [record.provider + ":" + record.token];
  if (record.alertToken) keys.push(record.provider + ":" + record.alertToken);
  return keys;
}

interface TokenOwner {
  aor: string;
  instance: string;
}

function indexTokens(record: DeviceRecord): void {
  const keys = tokensOf(record);
  for (let i = 0; i < keys.length; i++) setJson(TOKENS_TABLE, keys[i], { aor: record.aor, instance: record.instance });
}

function unindexTokens(record: DeviceRecord): void {
  const keys = tokensOf(record);
  for (let i = 0; i < keys.length; i++) {
    const owner = getJson<TokenOwner>(TOKENS_TABLE, keys[i]);
    if (owner && owner.aor === record.aor && owner.instance === record.instance) remove(TOKENS_TABLE, keys[i]);
  }
}

/** Every field a REGISTER sets, except the time: equal means the re-REGISTER changed nothing. */
function bindingOf(record: DeviceRecord): string {
  const options: string[] = [];
  if (record.options) {
    for (const name in record.options) if (has(record.options, name)) options.push(name + "=" + record.options[name]);
    options.sort();
  }
  return JSON.stringify([
    record.appId, record.provider, record.token, record.alertToken || "", record.pushKind || "", record.apnsTopic || "",
    record.fcmProjectId || "", record.sandbox ? 1 : 0, options, record.rule || "", record.userAgent, record.proxy,
  ]);
}

/**
 * Loads the records from disk into htable, once per Kamailio run (the first worker that needs them; the
 * others wait on the lock). Never call it holding a devices lock: the loader takes those.
 */
export function ensureDevicesLoaded(): void {
  if (getNumber(STATE_TABLE, LOADED_KEY) > 0) return;
  withLock(STATE_TABLE, LOADED_KEY, function () {
    if (getNumber(STATE_TABLE, LOADED_KEY) > 0) return;
    // Set even when the database fails: the proxy keeps working from memory, and says so once.
    KSR.htable.sht_seti(STATE_TABLE, LOADED_KEY, 1);
    const nowMs = Date.now();
    let aors = 0;
    let devices = 0;
    const loaded =
      createSchema() &&
      readAll(nowMs / 1000, function (aor: string, json: string) {
        let records: DevicesOfAor;
        try {
          records = JSON.parse(json) as DevicesOfAor;
        } catch (e) {
          logError("device record of " + aor + " in the database is not JSON: skipped");
          return;
        }
        let kept = 0;
        for (const instance in records) {
          if (!has(records, instance)) continue;
          if (!isRetained(records[instance], nowMs)) delete records[instance];
          else {
            indexTokens(records[instance]);
            kept++;
          }
        }
        if (!kept) return;
        KSR.htable.sht_sets(DEVICES_TABLE, aor, JSON.stringify(records));
        aors++;
        devices += kept;
      });
    if (loaded) logInfo("device records loaded from the database: " + devices + " devices of " + aors + " AORs");
    else logError("cannot read device records from the database (connection pusher, knob PUSHER_DB_CONNECTION): records live in memory only");
  });
}

export function devicesOf(aor: string): DeviceRecord[] {
  ensureDevicesLoaded();
  const devices = liveDevices(aor, Date.now());
  const list: DeviceRecord[] = [];
  for (const instance in devices) if (has(devices, instance)) list.push(devices[instance]);
  return list;
}

/** What saveDevice did: nothing, moved the last-REGISTER time only, or wrote a new or changed record. */
export type SaveOutcome = "unchanged" | "refreshed" | "stored";

/**
 * Stores or replaces the record of one device; a token it holds is taken from any other device. With `mark`
 * (register-marks.ts markOf) the AOR's item is marked in the same write: the REGISTER that carried this record,
 * sent again, changes nothing.
 */
export function saveDevice(record: DeviceRecord, mark?: string): SaveOutcome {
  ensureDevicesLoaded();
  let previous: DeviceRecord | null = null;
  const outcome = withLock(DEVICES_TABLE, record.aor, function (): SaveOutcome {
    const item = readAor(record.aor, record.registeredAtMs);
    const devices = item.devices;
    previous = has(devices, record.instance) ? devices[record.instance] : null;
    const same = previous !== null && bindingOf(previous) === bindingOf(record);
    if (same && record.registeredAtMs - (previous as DeviceRecord).registeredAtMs < REFRESH_AFTER_MS) {
      if (mark && item.marks.indexOf(mark) < 0) {
        KSR.htable.sht_sets(DEVICES_TABLE, record.aor, withMark(item.marks, mark) + JSON.stringify(devices));
      }
      return "unchanged";
    }
    devices[record.instance] = record;
    storeAor(record.aor, devices, mark);
    return same ? "refreshed" : "stored";
  });
  if (outcome !== "stored") return outcome;
  if (previous) unindexTokens(previous);
  // Written before the old holder is removed: a crash in between leaves a duplicate, never a lost token.
  const keys = tokensOf(record);
  for (let i = 0; i < keys.length; i++) {
    const owner = getJson<TokenOwner>(TOKENS_TABLE, keys[i]);
    if (owner && (owner.aor !== record.aor || owner.instance !== record.instance)) {
      const moved = removeDevice(owner.aor, owner.instance, keys[i]);
      if (moved) logInfo("device token moved from aor=" + owner.aor + " instance=" + owner.instance + " to aor=" + record.aor + " instance=" + record.instance);
    }
  }
  indexTokens(record);
  return outcome;
}

/**
 * Removes one device's record (its token is dead, it de-registered, or its token moved); with `onlyWithToken`
 * only while it still holds that token, with `onlyRegisteredBeforeMs` only if its last written REGISTER is not
 * later (APNs: a token registered again after it became invalid is kept). Returns the removed record, or null.
 */
export function removeDevice(aor: string, instance: string, onlyWithToken?: string, onlyRegisteredBeforeMs?: number): DeviceRecord | null {
  ensureDevicesLoaded();
  const removed = withLock(DEVICES_TABLE, aor, function (): DeviceRecord | null {
    const devices = liveDevices(aor, Date.now());
    if (!has(devices, instance)) return null;
    const record = devices[instance];
    if (onlyWithToken !== undefined && tokensOf(record).indexOf(onlyWithToken) < 0) return null;
    if (onlyRegisteredBeforeMs !== undefined && record.registeredAtMs > onlyRegisteredBeforeMs) return null;
    delete devices[instance];
    storeAor(aor, devices);
    return record;
  });
  if (removed) unindexTokens(removed);
  return removed;
}

/** Removes every device of an AOR (`Contact: *`); returns how many there were. */
export function removeAllDevices(aor: string): number {
  const devices = devicesOf(aor);
  for (let i = 0; i < devices.length; i++) removeDevice(aor, devices[i].instance);
  return devices.length;
}

/** A pushed device as its call keeps it: what the call push names, and its alert token for the call-ended notice. */
export interface CallDevice extends PushDevice {
  /** Apple two-token form: the alert (`:remote`) token next to the VoIP `token`. */
  alertToken?: string;
}

/** The device as a call push names it (protocol.ts PushDevice), plus the alert token a call-ended notice needs. */
export function pushDeviceOf(record: DeviceRecord): CallDevice {
  const device: CallDevice = { instance: record.instance, appId: record.appId, provider: record.provider, token: record.token };
  if (record.pushKind) device.pushKind = record.pushKind;
  if (record.apnsTopic) device.apnsTopic = record.apnsTopic;
  if (record.fcmProjectId) device.fcmProjectId = record.fcmProjectId;
  if (record.sandbox) device.sandbox = true;
  if (record.alertToken) device.alertToken = record.alertToken;
  return device;
}
