// `pusher devices [aor] [--json] [--show-tokens]`: the device records of the running Kamailio, read over its
// ctl socket from the htable every worker uses (htable.get for one AOR, htable.dump for all), so what is
// listed is what a call would push. Tokens are masked unless asked: they are credentials to wake a phone.
import { PusherConfig } from "../config";
import { DeviceRecord } from "../device-record";
import { loadConfig, usageError } from "./config-file";
import { callKamailio } from "./kamailio-rpc";
import { runtimePaths } from "./kamailio-runtime";

const DEVICES_TABLE = "pusher_devices";
const DAY_MS = 24 * 3600 * 1000;

/** A record as the plugin stores it. */
export type ListedDevice = DeviceRecord;

/** Items of a kamcmd htable.get/htable.dump answer: `name: …` then `value: …` lines (values are one-line JSON). */
export function parseHtableItems(output: string): { name: string; value: string }[] {
  const items: { name: string; value: string }[] = [];
  let name: string | null = null;
  for (const line of output.split("\n")) {
    const match = /^\s*(name|value): (.*)$/.exec(line);
    if (!match) continue;
    if (match[1] === "name") name = match[2];
    else if (name !== null) {
      items.push({ name, value: match[2] });
      name = null;
    }
  }
  return items;
}

/** The same masking as the plugin's logs: first 6 and last 4 characters. */
export function maskToken(token: string): string {
  if (token.length <= 12) return "…";
  return token.slice(0, 6) + "…" + token.slice(-4);
}

/** Devices from htable items, leaving out those past devices.retentionDays (the plugin no longer pushes them). */
export function devicesFromItems(items: { name: string; value: string }[], config: PusherConfig, nowMs: number): ListedDevice[] {
  const devices: ListedDevice[] = [];
  const retentionMs = config.devices.retentionDays * DAY_MS;
  for (const item of items) {
    let records: { [instance: string]: ListedDevice };
    try {
      // The plugin may put marks of REGISTERs it applied ahead of the JSON (device-store.ts saveDevice's mark).
      records = JSON.parse(item.value.slice(Math.max(0, item.value.indexOf("{"))));
    } catch {
      continue;
    }
    for (const record of Object.values(records)) {
      if (record.registeredAtMs + retentionMs > nowMs) devices.push(record);
    }
  }
  return devices.sort((a, b) => (a.aor === b.aor ? a.instance.localeCompare(b.instance) : a.aor.localeCompare(b.aor)));
}

async function readItems(ctlSocket: string, aor: string | undefined): Promise<{ name: string; value: string }[]> {
  if (aor === undefined) return parseHtableItems(await callKamailio(ctlSocket, ["htable.dump", DEVICES_TABLE]));
  try {
    return parseHtableItems(await callKamailio(ctlSocket, ["htable.get", DEVICES_TABLE, aor.toLowerCase()]));
  } catch (error) {
    // htable.get answers an error for a key it does not hold: no devices for that AOR.
    if (/not found|no such/i.test((error as Error).message)) return [];
    throw error;
  }
}

export async function runDevices(configPath: string, args: string[], json: boolean, showTokens: boolean): Promise<void> {
  if (args.length > 1) throw usageError(`expected "devices [aor] [--json] [--show-tokens]"`);
  const { config } = loadConfig(configPath);
  const paths = runtimePaths(configPath, config);
  const devices = devicesFromItems(await readItems(paths.ctlSocket, args[0]), config, Date.now());
  if (!showTokens) {
    for (const device of devices) {
      device.token = maskToken(device.token);
      if (device.alertToken) device.alertToken = maskToken(device.alertToken);
    }
  }
  if (json) {
    console.log(JSON.stringify(devices, null, 2));
    return;
  }
  if (devices.length === 0) {
    console.log(args[0] ? `no devices for ${args[0]}` : "no devices");
    return;
  }
  for (const device of devices) {
    const registered = new Date(device.registeredAtMs).toISOString();
    console.log([device.aor, device.instance, device.appId, device.provider, device.token, device.userAgent, registered].join("\t"));
  }
}
