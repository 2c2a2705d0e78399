// `pusher devices [aor] [--json] [--show-tokens]`: the device records of the running Kamailio, read over its
// ctl socket from the htable every worker uses (htable.get for one AOR, htable.dump for all), so what is
// listed is what a call would push. Tokens are masked unless asked: they are credentials to wake a phone.
// While the records load at start, memory lacks the AORs the load has not reached (a call to one reads its row from
// the database): the list says so, and how far the load is (src/device-load-progress.ts), instead of "no devices".
import { PusherConfig } from "../config";
import { loadProgressNote } from "../device-load-progress";
import { DeviceRecord } from "../device-record";
import { escapeControlCharacters } from "../log-text";
import { maskToken } from "../mask-token";
import { loadConfig, usageError } from "./config-file";
import { callKamailio } from "./kamailio-rpc";
import { runtimePaths } from "./kamailio-runtime";

const DEVICES_TABLE = "pusher_devices";
const MESSAGES_TABLE = "pusher_messages";
const STATE_TABLE = "pusher_state";
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

/** Devices from htable items, leaving out those past devices.retentionDays (the plugin no longer pushes them). */
export function devicesFromItems(
  items: { name: string; value: string }[],
  config: PusherConfig,
  nowMs: number,
): ListedDevice[] {
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

/**
 * One device as `pusher devices` prints it: tab-separated fields. They came from phones: no CR, LF, tab (the
 * separator) or ESC of theirs reaches the terminal.
 */
export function deviceLine(device: ListedDevice): string {
  const registered = new Date(device.registeredAtMs).toISOString();
  const fields = [
    device.aor,
    device.instance,
    device.appId,
    device.provider,
    device.token,
    device.userAgent,
    registered,
  ];
  return fields.map((field) => escapeControlCharacters(String(field))).join("\t");
}

/**
 * The plugin's key of an AOR (src/plugin/sip-message.ts aorOf): the user part as given, the host lower-cased
 * (RFC 3261 §19.1.4).
 */
export function aorKey(aor: string): string {
  const at = aor.lastIndexOf("@");
  return at < 0 ? aor : aor.slice(0, at) + "@" + aor.slice(at + 1).toLowerCase();
}

async function readItem(ctlSocket: string, key: string): Promise<{ name: string; value: string }[]> {
  try {
    return parseHtableItems(await callKamailio(ctlSocket, ["htable.get", DEVICES_TABLE, key]));
  } catch (error) {
    // htable.get answers an error for a key it does not hold: no devices for that AOR.
    if (/not found|no such/i.test((error as Error).message)) return [];
    throw error;
  }
}

/** How many stored MESSAGEs wait for `aor` (htable pusher_messages, src/plugin/message-store.ts); 0 for none. */
async function messagesWaiting(ctlSocket: string, aor: string): Promise<number> {
  try {
    const items = parseHtableItems(
      await callKamailio(ctlSocket, ["htable.get", MESSAGES_TABLE, `waiting:${aorKey(aor)}`]),
    );
    return items.length ? Number(items[0].value) || 0 : 0;
  } catch (error) {
    if (/not found|no such|doesn't exist/i.test((error as Error).message)) return 0;
    throw error;
  }
}

/** loadProgressNote of the running Kamailio's pusher_state: null once every device record is loaded. */
async function loadingNote(ctlSocket: string): Promise<string | null> {
  const state: { [key: string]: number } = {};
  for (const item of parseHtableItems(await callKamailio(ctlSocket, ["htable.dump", STATE_TABLE])))
    state[item.name] = Number(item.value);
  return loadProgressNote(state);
}

async function readItems(ctlSocket: string, aor: string | undefined): Promise<{ name: string; value: string }[]> {
  if (aor === undefined) return parseHtableItems(await callKamailio(ctlSocket, ["htable.dump", DEVICES_TABLE]));
  const own = await readItem(ctlSocket, aorKey(aor));
  // Records written before keys kept the user's case sit under the lower-cased key (device-store.ts legacyDevices).
  if (own.length || aorKey(aor) === aor.toLowerCase()) return own;
  return readItem(ctlSocket, aor.toLowerCase());
}

export async function runDevices(
  configPath: string,
  args: string[],
  json: boolean,
  showTokens: boolean,
): Promise<void> {
  if (args.length > 1) throw usageError(`expected "devices [aor] [--json] [--show-tokens]"`);
  const { config } = loadConfig(configPath);
  const paths = runtimePaths(configPath, config);
  // Under the lower-cased key of an AOR, only records written before keys kept the user's case are its own.
  const devices = devicesFromItems(await readItems(paths.ctlSocket, args[0]), config, Date.now()).filter(
    (device) => args[0] === undefined || device.aor === aorKey(args[0]) || !device.userCaseKept,
  );
  if (!showTokens) {
    for (const device of devices) {
      device.token = maskToken(device.token);
      if (device.alertToken) device.alertToken = maskToken(device.alertToken);
    }
  }
  // An AOR with devices in memory has them all (a REGISTER or call during the load read its row first); the list of
  // every AOR, or an AOR without any, may lack what the load has not reached.
  const note = args[0] === undefined || devices.length === 0 ? await loadingNote(paths.ctlSocket) : null;
  if (json) {
    console.log(JSON.stringify(devices, null, 2));
    // stdout stays the list of records.
    if (note) console.error(`pusher devices: ${note}: the list may lack AORs not read yet`);
    return;
  }
  if (devices.length === 0 && note)
    console.log(args[0] ? `no devices for ${args[0]} in memory yet: ${note}` : `no devices in memory yet: ${note}`);
  else if (devices.length === 0) console.log(args[0] ? `no devices for ${args[0]}` : "no devices");
  for (const device of devices) console.log(deviceLine(device));
  if (devices.length && note) console.log(`${note}: AORs not read yet are not listed`);
  // For one AOR: the MESSAGEs stored for its phones, delivered at their next REGISTER (docs/messages.md).
  if (args[0] !== undefined) console.log(`messages waiting: ${await messagesWaiting(paths.ctlSocket, args[0])}`);
}
