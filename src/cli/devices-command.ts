// `pusher devices [aor] [--json] [--show-tokens]`: the device records of the running Kamailio, read over its
// ctl socket from the htable every worker uses (htable.get for one AOR, htable.dump for all), so what is
// listed is what a call would push. Tokens are masked unless asked: they are credentials to wake a phone.
// While the records load at start, memory lacks the AORs the load has not reached (a call to one reads its row from
// the database): the list says so, and how far the load is (src/device-load-progress.ts), instead of "no devices".
// The list of every AOR of a big node comes from the device database instead (DUMP_MAX_AORS), said on stderr, in
// the database's AOR order: streamed, never a million records held at once.
import { once } from "node:events";
import { PusherConfig } from "../config";
import { loadProgressNote } from "../device-load-progress";
import { DeviceRecord } from "../device-record";
import { escapeControlCharacters } from "../log-text";
import { maskToken } from "../mask-token";
import { runningConfig } from "./cluster-options";
import { usageError } from "./config-file";
import { describeDeviceDatabase, DeviceRow, deviceRows, runningDeviceDatabase } from "./device-database-reader";
import { callKamailio } from "./kamailio-rpc";

const DEVICES_TABLE = "pusher_devices";
const MESSAGES_TABLE = "pusher_messages";
const STATE_TABLE = "pusher_state";
const STATS_TABLE = "pusher_stats";
// pusher_stats: how many AORs memory holds that the database has not taken yet (src/plugin/device-store.ts).
const UNSAVED_COUNT = "devices_unsaved";
const DAY_MS = 24 * 3600 * 1000;
// kamcmd takes a reply of 128 KB at most (MAX_REPLY_SIZE, utils/kamcmd/kamcmd.c): htable.dump of about 250 AORs of one
// device each (measured on Kamailio 5.6: 251 fit, 301 did not), fewer of several devices or long tokens. A bigger
// table still costs Kamailio's ctl process the whole reply first (200 000 AORs: 6.5 s, then refused by kamcmd). So
// beyond this many AORs (htable.stats) the list of every AOR comes from the device database, as it does when a
// smaller dump is still too big.
const DUMP_MAX_AORS = 200;
// Output is written in pieces of about this many characters: a million records never sit in one string.
const WRITE_CHUNK_CHARS = 64 * 1024;

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

/**
 * Devices from htable items (or the database's rows: the same JSON), leaving out those past devices.retentionDays
 * (the plugin no longer pushes them), sorted by AOR then instance.
 */
export function devicesFromItems(
  items: Iterable<{ value: string }>,
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

/** JSON.stringify([...devices], null, 2), a device at a time. */
export function* devicesJson(devices: Iterable<ListedDevice>): Generator<string> {
  let first = true;
  // Each element one level in: every line of its own text indented by two more spaces (JSON has no raw newline).
  for (const device of devices) {
    yield (first ? "[\n  " : ",\n  ") + JSON.stringify(device, null, 2).replace(/\n/g, "\n  ");
    first = false;
  }
  yield first ? "[]" : "\n]";
}

function* deviceLines(devices: Iterable<ListedDevice>): Generator<string> {
  for (const device of devices) yield deviceLine(device) + "\n";
}

function maskTokens(device: ListedDevice): void {
  device.token = maskToken(device.token);
  if (device.alertToken) device.alertToken = maskToken(device.alertToken);
}

/**
 * The devices of the database's rows as they are read (a million never held at once): in the database's AOR order,
 * each AOR's by instance, retention applied, tokens masked unless `showTokens`. `listed.count` counts them.
 */
function* databaseDevices(
  rows: Iterable<DeviceRow>,
  config: PusherConfig,
  nowMs: number,
  showTokens: boolean,
  listed: { count: number },
): Generator<ListedDevice> {
  for (const row of rows) {
    for (const device of devicesFromItems([row], config, nowMs)) {
      if (!showTokens) maskTokens(device);
      listed.count++;
      yield device;
    }
  }
}

/** Writes `pieces` to stdout in chunks, waiting for a pipe that is full. */
async function writeOut(pieces: Iterable<string>): Promise<void> {
  let chunk: string[] = [];
  let chars = 0;
  const flush = async (): Promise<void> => {
    if (!process.stdout.write(chunk.join(""))) await once(process.stdout, "drain");
    chunk = [];
    chars = 0;
  };
  for (const piece of pieces) {
    chunk.push(piece);
    chars += piece.length;
    if (chars >= WRITE_CHUNK_CHARS) await flush();
  }
  if (chunk.length) await flush();
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

/** How many items htable.stats counts in `table` (0 when it does not list it). */
async function itemCount(ctlSocket: string, table: string): Promise<number> {
  const match = new RegExp(`name: ${table}\\s+slots: \\d+\\s+all: (\\d+)`).exec(
    await callKamailio(ctlSocket, ["htable.stats"]),
  );
  return match ? Number(match[1]) : 0;
}

/** A number of an htable (0 when the key is not there). */
async function storedNumber(ctlSocket: string, table: string, key: string): Promise<number> {
  try {
    const items = parseHtableItems(await callKamailio(ctlSocket, ["htable.get", table, key]));
    return items.length ? Number(items[0].value) || 0 : 0;
  } catch (error) {
    if (/not found|no such|doesn't exist/i.test((error as Error).message)) return 0;
    throw error;
  }
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
function messagesWaiting(ctlSocket: string, aor: string): Promise<number> {
  return storedNumber(ctlSocket, MESSAGES_TABLE, `waiting:${aorKey(aor)}`);
}

/** loadProgressNote of the running Kamailio's pusher_state: null once every device record is loaded. */
async function loadingNote(ctlSocket: string): Promise<string | null> {
  const state: { [key: string]: number } = {};
  for (const item of parseHtableItems(await callKamailio(ctlSocket, ["htable.dump", STATE_TABLE])))
    state[item.name] = Number(item.value);
  return loadProgressNote(state);
}

/** Every item of htable pusher_devices, or why one kamcmd reply cannot hold them all. */
async function dumpItems(
  ctlSocket: string,
): Promise<{ items: { name: string; value: string }[] } | { tooBig: string }> {
  const aors = await itemCount(ctlSocket, DEVICES_TABLE);
  if (aors > DUMP_MAX_AORS) return { tooBig: `${aors} AORs are more than one htable.dump reply holds` };
  try {
    return { items: parseHtableItems(await callKamailio(ctlSocket, ["htable.dump", DEVICES_TABLE])) };
  } catch (error) {
    // kamcmd's "reply too big"; Kamailio's ctl out of memory for the reply.
    if (/too big|memory/i.test((error as Error).message)) return { tooBig: (error as Error).message };
    throw error;
  }
}

/** The items of one AOR. */
async function readItems(ctlSocket: string, aor: string): Promise<{ name: string; value: string }[]> {
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
  const { config, paths } = runningConfig(configPath);
  const nowMs = Date.now();
  let devices: ListedDevice[];
  if (args[0] !== undefined) {
    // Under the lower-cased key of an AOR, only records written before keys kept the user's case are its own.
    devices = devicesFromItems(await readItems(paths.ctlSocket, args[0]), config, nowMs).filter(
      (device) => device.aor === aorKey(args[0]) || !device.userCaseKept,
    );
  } else {
    const dump = await dumpItems(paths.ctlSocket);
    if ("items" in dump) {
      devices = devicesFromItems(dump.items, config, nowMs);
    } else {
      // The database holds every record (on disk before its REGISTER was answered), loaded at start or not yet.
      const database = runningDeviceDatabase(config, paths);
      let note = `listed from the device database ${describeDeviceDatabase(database)} in its AOR order (${dump.tooBig})`;
      const unsaved = await storedNumber(paths.ctlSocket, STATS_TABLE, UNSAVED_COUNT);
      if (unsaved > 0)
        note += `; ${unsaved} AORs changed in memory are not written to it yet: their rows there are older`;
      const listed = { count: 0 };
      const streamed = databaseDevices(deviceRows(database, nowMs / 1000), config, nowMs, showTokens, listed);
      if (json) {
        await writeOut(devicesJson(streamed));
        console.log();
      } else {
        await writeOut(deviceLines(streamed));
        if (listed.count === 0) console.log("no devices");
      }
      console.error(`pusher devices: ${note}`);
      return;
    }
  }
  if (!showTokens) for (const device of devices) maskTokens(device);
  // An AOR with devices in memory has them all (a REGISTER or call during the load read its row first); the list of
  // every AOR, or an AOR without any, may lack what the load has not reached (not the database's list).
  const note = args[0] === undefined || devices.length === 0 ? await loadingNote(paths.ctlSocket) : null;
  if (json) {
    await writeOut(devicesJson(devices));
    console.log();
    // stdout stays the list of records.
    if (note) console.error(`pusher devices: ${note}: the list may lack AORs not read yet`);
    return;
  }
  if (devices.length === 0 && note)
    console.log(args[0] ? `no devices for ${args[0]} in memory yet: ${note}` : `no devices in memory yet: ${note}`);
  else if (devices.length === 0) console.log(args[0] ? `no devices for ${args[0]}` : "no devices");
  await writeOut(deviceLines(devices));
  if (devices.length && note) console.log(`${note}: AORs not read yet are not listed`);
  // For one AOR: the MESSAGEs stored for its phones, delivered at their next REGISTER (docs/messages.md).
  if (args[0] !== undefined) console.log(`messages waiting: ${await messagesWaiting(paths.ctlSocket, args[0])}`);
}
