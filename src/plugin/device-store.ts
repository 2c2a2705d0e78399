// Device records: htable `pusher_devices` (one item per AOR holding every device of that AOR, so a call
// reads one item), written through to disk (device-database) on every change, loaded from it once after
// Kamailio starts. While that load runs (a million rows take a minute) every other read of an AOR the load has not
// reached reads its row through to the database (loadAor), so a call to it is pushed and a REGISTER to it keeps its
// other devices; a token a REGISTER takes meanwhile from such an AOR leaves it when the load gets there (adoptRow).
// The item may start with marks of REGISTERs already applied (saveDevice's `mark`): cfg answers
// the same REGISTER again without JS; any change to the AOR's devices drops them. `pusher_tokens` maps each token to the device holding it, so a token that shows up
// under another instance moves there, and under another AOR too when the REGISTER is authenticated for the AOR
// that held it (a phone re-provisioned to another account keeps one record; a stranger's claim keeps both).
// Bounded: at most devices.maxPerAor records per AOR (a new one replaces the one registered longest ago), and an
// index entry leaves with its record, whether removed, replaced or past retention.
// The database down or hanging never costs a REGISTER its answer nor the record: htable has it, the AOR is marked
// in `pusher_unsaved` (and counted in pusher_stats devices_unsaved), and the timer writes the AOR's current record
// when the database answers again (retryDeviceDatabase). A crash of Kamailio before that loses what is unsaved.

import { DeviceRecord } from "../device-record";
import { PushDevice } from "../protocol";
import { LOAD_PENDING_KEY, LOAD_READ_KEY, LOAD_ROWS_KEY } from "../device-load-progress";
import {
  countRows,
  createSchema,
  databaseHeld,
  deleteAor,
  holdDatabase,
  probeDatabase,
  readAll,
  readAorRow,
  releaseDatabase,
  withDatabaseForced,
  writeAor,
} from "./device-database";
import { logError, logInfo } from "./log";
import { currentConfig } from "./settings";
import {
  DEVICES_TABLE,
  STATE_TABLE,
  STATS_TABLE,
  TOKENS_TABLE,
  UNSAVED_TABLE,
  getJson,
  getNumber,
  getString,
  remove,
  setJson,
  withLock,
} from "./shared-state";
import { has } from "./own-key";
import { withMark } from "./register-marks";

type DevicesOfAor = { [instance: string]: DeviceRecord };

const DAY_MS = 24 * 3600 * 1000;
// An unchanged re-REGISTER writes nothing, except to move registeredAtMs once a day: retention is counted
// from the last REGISTER to within a day, for one write per device per day at most.
const REFRESH_AFTER_MS = DAY_MS;
// pusher_state: 1 once a worker took the load at start (ensureDevicesLoaded).
const LOADED_KEY = "devices_loaded";
// pusher_state LOAD_PENDING_KEY: 2 while the load at start runs, 1 once it failed (the database did not answer; the
// timer loads the records once it does), 0 when they are loaded. With LOAD_ROWS_KEY and LOAD_READ_KEY, `pusher
// devices` says how far it is (src/device-load-progress.ts).
// pusher_state, while the load at start runs: how many AORs lost their last device (row deleted). The load reads rows
// a page at a time; a row removed after its page was read is read again before it is loaded (loadDevices).
const REMOVED_WHILE_LOADING_KEY = "devices_removed_while_loading";
// In a cluster, every write of a replicated htable (every KSR.htable set, $sht, even of a key just read from the
// database) goes to every other node as its own KDMQ request, and htable has no write that stays local: a node whose
// load wrote a million rows sent a million requests to each peer. So a node loads only once the other nodes' full
// copy (htable dmq_init_sync) has come, and the load writes only the rows memory still lacks (none, usually).
// pusher_state: when the load was taken (epoch s) while it waits for that copy; 0 once it started.
const LOAD_WAITING_SINCE_KEY = "devices_load_waiting_since";
// pusher_state: the pid of the process running the load at start (the load timer's).
const LOADER_PID_KEY = "devices_loader_pid";
// pusher_state: when the last request of another node's full copy came (epoch s; route PUSHER_CLUSTER_MESSAGE).
const CLUSTER_SYNC_AT_KEY = "cluster_sync_at";
// No copy this long after the load was taken: no other node runs (DMQ asks them within milliseconds of the start),
// and the records come from the database.
const CLUSTER_SYNC_WAIT_S = 5;
// The copy is over when none of its requests came for this long. They come back to back, 60 KB each over UDP, and a
// burst of them overflows the socket's buffer: a request lost so is sent again by the peer's tm at most T2 (4 s)
// after its last try. So the quiet must last more than 4 s ($TV(s) counts whole seconds: 6 is at least 5 s).
const CLUSTER_SYNC_QUIET_S = 6;
// pusher_stats: how many AORs pusher_unsaved holds (a gauge, `pusher_devices_unsaved`).
const UNSAVED_COUNT = "devices_unsaved";
// The timer writes at most this many unsaved AORs a second (a round trip each); the database stays held until
// it has written every one that was due (new REGISTERs meanwhile are marked, and cost their worker nothing).
const RETRY_BATCH = 1000;
// An AOR whose write the database refused while it answered the probe (its record, not the database, is the
// problem: a value it cannot store) is tried again this much later, not every second.
const REFUSED_RETRY_S = 60;

function retentionMs(): number {
  return currentConfig().devices.retentionDays * DAY_MS;
}

function isRetained(record: DeviceRecord, nowMs: number): boolean {
  return record.registeredAtMs + retentionMs() > nowMs;
}

interface AorItem {
  devices: DevicesOfAor;
  marks: string;
  /** Records past retention, left out of `devices`: the next write drops them, and their tokens leave the index. */
  expired: DeviceRecord[];
}

/** The AOR's devices still within retention, and the marks ahead of them. */
function readAor(aor: string, nowMs: number): AorItem {
  const value = getString(DEVICES_TABLE, aor);
  const start = value === null ? -1 : value.indexOf("{");
  let devices: DevicesOfAor = {};
  // Within withRowsWrittenOnce, the item this process stored last is not parsed again (a copy: callers change it).
  const stored = pendingRows && value !== null && has(storedItems, aor) ? storedItems[aor] : null;
  if (stored && stored.text === value) {
    for (const instance in stored.devices)
      if (has(stored.devices, instance)) devices[instance] = stored.devices[instance];
  } else {
    try {
      if (start >= 0) devices = JSON.parse((value as string).substring(start)) as DevicesOfAor;
    } catch (e) {
      devices = {};
    }
  }
  const expired: DeviceRecord[] = [];
  for (const instance in devices) {
    if (has(devices, instance) && !isRetained(devices[instance], nowMs)) {
      expired.push(devices[instance]);
      delete devices[instance];
    }
  }
  return { devices: devices, marks: start > 0 ? (value as string).substring(0, start) : "", expired: expired };
}

/** Takes the tokens of records that are gone (removed, replaced, past retention) out of the token index. */
function unindexAll(records: DeviceRecord[]): void {
  for (let i = 0; i < records.length; i++) unindexTokens(records[i]);
}

/**
 * The AOR's live devices. Records past retention are dropped here too (htable, disk and token index), so an AOR
 * that is only called, never registered again, does not keep them. While the load at start runs, an AOR it has not
 * reached is read from the database first (loadAor).
 */
function liveDevices(aor: string, nowMs: number): DevicesOfAor {
  loadAor(aor);
  const item = readAor(aor, nowMs);
  if (!item.expired.length) return item.devices;
  const purged = withLock(DEVICES_TABLE, aor, function (): AorItem {
    const current = readAor(aor, nowMs);
    if (current.expired.length) storeAor(aor, current.devices);
    return current;
  });
  unindexAll(purged.expired);
  return purged.devices;
}

/**
 * Makes room for `keep` within devices.maxPerAor: removes, from `devices`, the records whose last REGISTER is the
 * oldest (the first of equals) and returns them.
 */
function evictBeyondLimit(devices: DevicesOfAor, keep: string): DeviceRecord[] {
  const limit = currentConfig().devices.maxPerAor;
  const evicted: DeviceRecord[] = [];
  for (;;) {
    let count = 0;
    let oldest: DeviceRecord | null = null;
    for (const instance in devices) {
      if (!has(devices, instance)) continue;
      count++;
      if (instance !== keep && (!oldest || devices[instance].registeredAtMs < oldest.registeredAtMs))
        oldest = devices[instance];
    }
    if (count <= limit || !oldest) return evicted;
    evicted.push(oldest);
    delete devices[oldest.instance];
  }
}

function lastRegistrationMs(devices: DevicesOfAor): number {
  let lastRegisteredAtMs = 0;
  for (const instance in devices) {
    if (has(devices, instance) && devices[instance].registeredAtMs > lastRegisteredAtMs)
      lastRegisteredAtMs = devices[instance].registeredAtMs;
  }
  return lastRegisteredAtMs;
}

/**
 * Writes the AOR's devices to htable and disk (or removes both when none is left). Call under its lock. `marks`
 * go ahead of them in htable: none unless the REGISTER that made this change is marked (any change drops the
 * others).
 */
function storeAor(aor: string, devices: DevicesOfAor, marks?: string): void {
  const lastRegisteredAtMs = lastRegistrationMs(devices);
  if (!lastRegisteredAtMs) {
    remove(DEVICES_TABLE, aor);
    writeRow(aor, null, 0);
    if (loading()) KSR.htable.sht_inc(STATE_TABLE, REMOVED_WHILE_LOADING_KEY);
    return;
  }
  const json = JSON.stringify(devices);
  const text = (marks || "") + json;
  KSR.htable.sht_sets(DEVICES_TABLE, aor, text);
  writeRow(aor, json, lastRegisteredAtMs);
  // (callers never change `devices` after storing it)
  if (pendingRows) storedItems[aor] = { text: text, devices: devices };
}

/** A row withRowsWrittenOnce writes when its body is done: the AOR's devices as storeAor last stored them. */
interface PendingRow {
  json: string | null;
  lastRegisteredAtMs: number;
}

// The rows a REGISTER changed, while withRowsWrittenOnce runs (per process, like the request it handles), and the
// items it stored, as text and as objects: readAor of an item this process stored and nobody changed since needs no
// JSON.parse (a REGISTER of 16 contacts parsed its growing item 16 times).
let pendingRows: { [aor: string]: PendingRow } | null = null;
let storedItems: { [aor: string]: { text: string; devices: DevicesOfAor } } = {};

function writeRow(aor: string, json: string | null, lastRegisteredAtMs: number): void {
  if (pendingRows) pendingRows[aor] = { json: json, lastRegisteredAtMs: lastRegisteredAtMs };
  else saveToDatabase(aor, json, lastRegisteredAtMs);
}

/**
 * Runs `body` (a REGISTER's changes to device records) with each AOR's row written once, after it: a REGISTER of
 * 16 contacts wrote its AOR's row 16 times, growing (docs/benchmarks.md). Still before the REGISTER is answered.
 * A row another process changed meanwhile is left to that process, which writes the AOR as it is now.
 */
export function withRowsWrittenOnce<T>(body: () => T): T {
  if (pendingRows) return body();
  pendingRows = {};
  try {
    return body();
  } finally {
    const rows = pendingRows;
    pendingRows = null;
    storedItems = {};
    for (const aor in rows) if (has(rows, aor)) writePendingRow(aor, rows[aor]);
  }
}

function writePendingRow(aor: string, row: PendingRow): void {
  withLock(DEVICES_TABLE, aor, function () {
    const value = getString(DEVICES_TABLE, aor);
    const json = value === null ? null : value.substring(value.indexOf("{"));
    if (json === row.json) saveToDatabase(aor, row.json, row.lastRegisteredAtMs);
  });
}

function isUnsaved(aor: string): boolean {
  return typeof KSR.htable.sht_get(UNSAVED_TABLE, aor) === "number";
}

/**
 * Writes the AOR's row (`json` null: deletes it) and keeps `pusher_unsaved` in step: marked when the database
 * failed or is held, unmarked once a write went through. Call under the AOR's lock, so the mark, its count and
 * the row change together.
 */
function saveToDatabase(aor: string, json: string | null, lastRegisteredAtMs: number): boolean {
  const saved = json === null ? deleteAor(aor) : writeAor(aor, json, (lastRegisteredAtMs + retentionMs()) / 1000);
  if (saved) {
    if (isUnsaved(aor)) {
      remove(UNSAVED_TABLE, aor);
      KSR.htable.sht_dec(STATS_TABLE, UNSAVED_COUNT);
    }
  } else if (!isUnsaved(aor)) {
    // 0: the timer's next tick. An AOR marked already keeps its retry time.
    KSR.htable.sht_seti(UNSAVED_TABLE, aor, 0);
    KSR.htable.sht_inc(STATS_TABLE, UNSAVED_COUNT);
  }
  return saved;
}

function tokensOf(record: DeviceRecord): string[] {
  const keys = [record.provider + ":" + record.token];
  if (record.alertToken) keys.push(record.provider + ":" + record.alertToken);
  return keys;
}

interface TokenOwner {
  aor: string;
  instance: string;
  /** Indexed by a REGISTER before every record was loaded: the AOR it was authenticated for ("*": any). The load
   * takes the token from an AOR it reaches later when that REGISTER may (adoptRow, mayTake). */
  claim?: string;
}

/** Names the record's device as the holder of its tokens; `claim`: see TokenOwner. */
function indexTokens(record: DeviceRecord, claim?: string): void {
  const keys = tokensOf(record);
  const owner = tokenOwnerOf(record, claim);
  for (let i = 0; i < keys.length; i++) setJson(TOKENS_TABLE, keys[i], owner);
}

function tokenOwnerOf(record: DeviceRecord, claim?: string): TokenOwner {
  const owner: TokenOwner = { aor: record.aor, instance: record.instance };
  if (claim !== undefined) owner.claim = claim;
  return owner;
}

function unindexTokens(record: DeviceRecord): void {
  const keys = tokensOf(record);
  for (let i = 0; i < keys.length; i++) unindexToken(record, keys[i]);
}

/** Takes `key` (`<provider>:<token>`) out of the token index while it names the record's device. */
function unindexToken(record: DeviceRecord, key: string): void {
  const owner = getJson<TokenOwner>(TOKENS_TABLE, key);
  if (owner && owner.aor === record.aor && owner.instance === record.instance) remove(TOKENS_TABLE, key);
}

/** Every field a REGISTER sets, except the time: equal means the re-REGISTER changed nothing. */
function bindingOf(record: DeviceRecord): string {
  const options: string[] = [];
  if (record.options) {
    for (const name in record.options) if (has(record.options, name)) options.push(name + "=" + record.options[name]);
    options.sort();
  }
  return JSON.stringify([
    record.appId,
    record.provider,
    record.token,
    record.alertToken || "",
    record.pushKind || "",
    record.apnsTopic || "",
    record.fcmProjectId || "",
    record.sandbox ? 1 : 0,
    options,
    record.rule || "",
    record.userAgent,
    record.proxy,
    record.userCaseKept ? 1 : 0,
  ]);
}

// RFC 3261 §19.1.4: AOR keys keep the user part's case (sip-message.ts aorOf). Records written before were keyed
// `user@host` all lower-cased, so their user's case is lost: a record without `userCaseKept` under the lower-cased
// key of an AOR is read as that AOR's while the AOR has none of its own, until its phone registers again (the new
// record takes its token: saveDevice) or its retention ends.
function legacyKeyOf(aor: string): string | null {
  const lower = aor.toLowerCase();
  return lower !== aor ? lower : null;
}

/** The records written before AOR keys kept the user's case that `aor` may read as its own. */
function legacyDevices(aor: string, nowMs: number): DevicesOfAor {
  const key = legacyKeyOf(aor);
  const found: DevicesOfAor = {};
  if (!key) return found;
  const devices = liveDevices(key, nowMs);
  for (const instance in devices)
    if (has(devices, instance) && !devices[instance].userCaseKept) found[instance] = devices[instance];
  return found;
}

function isEmpty(devices: DevicesOfAor): boolean {
  for (const instance in devices) if (has(devices, instance)) return false;
  return true;
}

/** The key that holds `aor`'s device `instance`: its own, or the lower-cased one of a record written before. */
function keyHolding(aor: string, instance: string): string {
  const nowMs = Date.now();
  if (has(liveDevices(aor, nowMs), instance) || !has(legacyDevices(aor, nowMs), instance)) return aor;
  return legacyKeyOf(aor) as string;
}

/**
 * Whether the REGISTER that stores `record`, authenticated for `authenticatedAor` ("*": authentication is off,
 * every AOR), may take a token from the device `holder`: one of its own AOR, or of an AOR it proved to be. A
 * token is no proof of ownership (it travels in every push and REGISTER): anyone else's claim keeps both.
 */
function mayTakeToken(holder: TokenOwner, record: DeviceRecord, authenticatedAor: string): boolean {
  const legacy =
    legacyKeyOf(record.aor) === holder.aor ? liveDevices(holder.aor, Date.now())[holder.instance] : undefined;
  return mayTake(holder.aor, legacy, record.aor, authenticatedAor);
}

/**
 * mayTakeToken's rule: a REGISTER of `aor`, authenticated for `authenticatedAor`, may take a token from a device of
 * `holderAor` (`holder`: that device's record, needed only when `holderAor` is `aor`'s lower-cased legacy key).
 */
function mayTake(holderAor: string, holder: DeviceRecord | undefined, aor: string, authenticatedAor: string): boolean {
  if (holderAor === aor || authenticatedAor === "*" || authenticatedAor === holderAor) return true;
  return legacyKeyOf(aor) === holderAor && holder !== undefined && !holder.userCaseKept;
}

// Per process: this process saw every record loaded (it never goes back), so it reads pusher_state no more.
let loadedHere = false;

/**
 * Loads the records from disk into htable, once per Kamailio run: the first process that needs them (route
 * PUSHER_WORKER_INIT's, at start) takes the load, which the load timer runs (rtimer `pusher_load`, its own process:
 * loadDevicesWhenDue), so no SIP worker and not the refresh pushes' timer spends a minute on a million rows. Every
 * process goes on meanwhile, reading the AORs the load has not reached through to the database (loadAor). Never call
 * it holding a devices lock: the loader takes those. When the database does not answer, the proxy works from memory
 * and the timer loads the records once it does (retryDeviceDatabase).
 */
export function ensureDevicesLoaded(): void {
  if (loadedHere) return;
  if (getNumber(STATE_TABLE, LOADED_KEY) === 0) {
    const taken = withLock(STATE_TABLE, LOADED_KEY, function (): boolean {
      if (getNumber(STATE_TABLE, LOADED_KEY) > 0) return false;
      // Pending before taken: a process that sees the load taken sees it running.
      KSR.htable.sht_seti(STATE_TABLE, LOAD_PENDING_KEY, 2);
      KSR.htable.sht_seti(STATE_TABLE, REMOVED_WHILE_LOADING_KEY, 0);
      KSR.htable.sht_seti(STATE_TABLE, LOADED_KEY, 1);
      return true;
    });
    // Outside the lock: a pusher_state slot held for the whole load would stall every process reading that slot.
    // The load timer starts it (loadDevicesWhenDue); meanwhile a read of an AOR memory lacks reads its row
    // (loadAor), as during the load, and REGISTERs write theirs: the table is created now. When that fails (the
    // database is down) the load fails here at once, and the timer loads the records once it answers.
    if (taken && createSchema())
      KSR.htable.sht_seti(STATE_TABLE, LOAD_WAITING_SINCE_KEY, Math.floor(Date.now() / 1000));
    else if (taken) loadAtStart();
  }
  loadedHere = getNumber(STATE_TABLE, LOAD_PENDING_KEY) === 0;
}

/** True when every record is loaded. */
function loadAtStart(): boolean {
  const loaded = loadDevices(false);
  KSR.htable.sht_seti(STATE_TABLE, LOAD_PENDING_KEY, loaded ? 0 : 1);
  if (loaded) return true;
  // The failed statement held the database: nothing is written before the timer has loaded the records.
  logError(
    "cannot read device records from the database (connection pusher, knob PUSHER_DB_CONNECTION): REGISTERs are kept in memory, and the records are loaded when it answers",
  );
  return false;
}

/**
 * The load timer (rtimer `pusher_load`), every second: runs the load at start that ensureDevicesLoaded took (true once
 * it loaded every record, false when there was nothing to do yet or the database failed). On a
 * single node at once; in a cluster once the other nodes' full copy of the records is over (CLUSTER_SYNC_QUIET_S
 * without a request of it), or CLUSTER_SYNC_WAIT_S after it was taken when none came (no other node runs: the first
 * node started loads every record from the database). A cluster node's load skips every AOR the copy brought, so it
 * writes, and replicates, only what the copy lacked.
 */
export function loadDevicesWhenDue(): boolean {
  const since = getNumber(STATE_TABLE, LOAD_WAITING_SINCE_KEY);
  if (since <= 0) return false;
  if (getNumber(STATE_TABLE, "cluster_nodes") > 1) {
    const nowS = Math.floor(Date.now() / 1000);
    const syncAt = getNumber(STATE_TABLE, CLUSTER_SYNC_AT_KEY);
    if (syncAt > 0 ? nowS - syncAt < CLUSTER_SYNC_QUIET_S : nowS - since < CLUSTER_SYNC_WAIT_S) return false;
    logInfo(
      syncAt > 0
        ? "cluster: the other nodes' copy of the device records came: loading the rows it lacked from the database"
        : "cluster: no other node sent the device records within " +
            CLUSTER_SYNC_WAIT_S +
            " s: loading them from the database",
    );
  }
  KSR.htable.sht_seti(STATE_TABLE, LOAD_WAITING_SINCE_KEY, 0);
  // Which process loads (the benchmarks measure its CPU; every rtimer process is "RTIMER SEC EXEC" in core.psx).
  KSR.htable.sht_seti(STATE_TABLE, LOADER_PID_KEY, Number(KSR.pv.get("$pp")));
  return loadAtStart();
}

/** Whether the load at start is running (not done, not failed). */
function loading(): boolean {
  return !loadedHere && getNumber(STATE_TABLE, LOAD_PENDING_KEY) === 2;
}

/**
 * While the load at start runs: an AOR memory lacks is read from the database (one SELECT by primary key) and kept
 * in memory (adoptRow), under its lock, so a REGISTER or removal of the AOR waits for it and the load, finding the
 * AOR in memory, leaves it. Nothing to do once every record is loaded; nothing read while the database is held.
 */
function loadAor(aor: string): void {
  if (!loading() || getString(DEVICES_TABLE, aor) !== null) return;
  withLock(DEVICES_TABLE, aor, function () {
    if (getString(DEVICES_TABLE, aor) !== null) return;
    const nowMs = Date.now();
    const json = readAorRow(aor, nowMs / 1000);
    const row = json === null ? null : liveRecordsOf(aor, json, nowMs);
    if (row) adoptRow(aor, row);
  });
}

interface Row {
  /** The records still within retention. */
  records: DevicesOfAor;
  /** The row's JSON when it holds nothing else: memory may take it as it is. */
  json: string | null;
}

/** A row's records still within retention, or null when its JSON is broken (logged). */
function liveRecordsOf(aor: string, json: string, nowMs: number): Row | null {
  let records: DevicesOfAor;
  try {
    records = JSON.parse(json) as DevicesOfAor;
  } catch (e) {
    logError("device record of " + aor + " in the database is not JSON: skipped");
    return null;
  }
  const retentionEndsMs = nowMs - retentionMs();
  let whole = true;
  for (const instance in records) {
    if (has(records, instance) && !(records[instance].registeredAtMs > retentionEndsMs)) {
      delete records[instance];
      whole = false;
    }
  }
  return { records: records, json: whole ? json : null };
}

/**
 * Puts a row's live records in memory, for an AOR memory lacks (under its lock): at most devices.maxPerAor (its
 * newest; the next write of the AOR stores that on disk too), each token indexed unless another device holds it. A
 * token that a REGISTER took before every record was loaded (TokenOwner.claim) leaves this AOR's device when that
 * REGISTER may take it from this AOR (mayTake): the device is dropped and the row written without it, as if the
 * REGISTER had found it here. Otherwise both keep the token, the index naming the newer. Returns the devices kept.
 */
function adoptRow(aor: string, row: Row): number {
  const records = row.records;
  const evicted = evictBeyondLimit(records, "").length > 0;
  let kept = 0;
  let moved = false;
  for (const instance in records) {
    if (!has(records, instance)) continue;
    const record = records[instance];
    const keys = tokensOf(record);
    const owners: (TokenOwner | null)[] = [];
    let takenBy: TokenOwner | null = null;
    for (let i = 0; i < keys.length; i++) {
      const owner = getJson<TokenOwner>(TOKENS_TABLE, keys[i]);
      owners.push(owner);
      if (
        owner &&
        owner.claim !== undefined &&
        (owner.aor !== aor || owner.instance !== instance) &&
        mayTake(aor, record, owner.aor, owner.claim)
      )
        takenBy = owner;
    }
    if (takenBy) {
      delete records[instance];
      moved = true;
      logInfo(
        "device token moved from aor=" +
          aor +
          " instance=" +
          instance +
          " to aor=" +
          takenBy.aor +
          " instance=" +
          takenBy.instance +
          " (registered while the records loaded)",
      );
      continue;
    }
    for (let i = 0; i < keys.length; i++)
      if (owners[i] === null) setJson(TOKENS_TABLE, keys[i], { aor: record.aor, instance: record.instance });
    kept++;
  }
  if (moved) storeAor(aor, records);
  // The row's own text when nothing was left out (most rows): no JSON.stringify for each of a million.
  else if (kept)
    KSR.htable.sht_sets(DEVICES_TABLE, aor, row.json !== null && !evicted ? row.json : JSON.stringify(records));
  return kept;
}

/**
 * Reads the rows into htable. An AOR already in memory is newer than its row: a REGISTER stored it during the load,
 * a call read it through (loadAor), or (in a cluster) another node's copy came over DMQ; the row does not overwrite
 * it. With `merge` (the timer's load after the one at start failed) the row's devices that memory lacks join it,
 * unless their token is held by another device now: memory then holds only what registered since the start, and
 * writing it alone would drop the others from the database; an AOR memory lacks but marks unsaved lost its devices
 * while the database was down, and stays without them.
 */
function loadDevices(merge: boolean): boolean {
  const nowMs = Date.now();
  let aors = 0;
  let devices = 0;
  let merged = 0;
  let removedBeforePage = 0;
  let rowsRead = 0;
  const loaded =
    createSchema() &&
    countRowsToLoad() &&
    readAll(
      nowMs / 1000,
      function (aor: string, json: string) {
        rowsRead++;
        // Most rows of a cluster node's load: the other nodes' copy brought the AOR (checked again under its lock).
        if (!merge && KSR.htable.sht_is_null(DEVICES_TABLE, aor) === -1) return;
        let row = liveRecordsOf(aor, json, nowMs);
        if (!row) return;
        withLock(DEVICES_TABLE, aor, function () {
          if (getString(DEVICES_TABLE, aor) !== null) {
            if (merge) merged += mergeRow(aor, (row as Row).records, nowMs);
            return;
          }
          if (merge && isUnsaved(aor)) return;
          // An AOR that lost its last device since this page was read may be this one: its row is read again.
          if (!merge && getNumber(STATE_TABLE, REMOVED_WHILE_LOADING_KEY) !== removedBeforePage) {
            const again = readAorRow(aor, nowMs / 1000);
            row = again === null ? null : liveRecordsOf(aor, again, nowMs);
            if (!row) return;
          }
          const kept = adoptRow(aor, row as Row);
          if (!kept) return;
          aors++;
          devices += kept;
        });
      },
      function () {
        removedBeforePage = getNumber(STATE_TABLE, REMOVED_WHILE_LOADING_KEY);
        KSR.htable.sht_seti(STATE_TABLE, LOAD_READ_KEY, rowsRead);
      },
    );
  if (loaded) {
    logInfo(
      "device records loaded from the database: " +
        devices +
        " devices of " +
        aors +
        " AORs" +
        (merge ? ", " + merged + " devices added to AORs registered meanwhile" : ""),
    );
  }
  return loaded;
}

/** Notes how many rows the load has ahead of it, none read yet (`pusher devices` shows it); false when the count failed. */
function countRowsToLoad(): boolean {
  const rows = countRows();
  KSR.htable.sht_seti(STATE_TABLE, LOAD_ROWS_KEY, rows);
  KSR.htable.sht_seti(STATE_TABLE, LOAD_READ_KEY, 0);
  return rows >= 0;
}

/** Adds the row's devices that the AOR's item in memory lacks (see loadDevices); how many. Under the AOR's lock. */
function mergeRow(aor: string, records: DevicesOfAor, nowMs: number): number {
  const item = readAor(aor, nowMs);
  const added: DeviceRecord[] = [];
  for (const instance in records) {
    if (!has(records, instance) || has(item.devices, instance) || tokenHeld(records[instance])) continue;
    item.devices[instance] = records[instance];
    added.push(records[instance]);
  }
  if (!added.length) return 0;
  const evicted = evictBeyondLimit(item.devices, "");
  storeAor(aor, item.devices);
  unindexAll(evicted);
  let kept = 0;
  for (let i = 0; i < added.length; i++) {
    if (!has(item.devices, added[i].instance)) continue;
    indexTokens(added[i]);
    kept++;
  }
  return kept;
}

/** Whether the token index names a device for one of the record's tokens (then that device holds it). */
function tokenHeld(record: DeviceRecord): boolean {
  const keys = tokensOf(record);
  for (let i = 0; i < keys.length; i++) if (getJson<TokenOwner>(TOKENS_TABLE, keys[i]) !== null) return true;
  return false;
}

// The timer is one process: its own JS heap remembers the outage it logged (epoch s; 0: none) and what it wrote.
let downSinceS = 0;
let writtenSinceDown = 0;

/**
 * The timer, every second, while the database is held or AORs are unsaved: probes the database, loads the records
 * if the load at start failed, writes the AORs that are due (each one's current record; no row when it has
 * none), and releases the database once every due one is written. Logs once when it finds the database down and
 * once when it is back.
 */
export function retryDeviceDatabase(): void {
  const held = databaseHeld() || getNumber(STATE_TABLE, LOAD_PENDING_KEY) === 1;
  if (!held && getNumber(STATS_TABLE, UNSAVED_COUNT) <= 0) return;
  const nowS = Math.floor(Date.now() / 1000);
  const outcome = withDatabaseForced(function () {
    return writeUnsaved(nowS, held);
  });
  if (outcome === "down") {
    holdDatabase();
    if (!downSinceS) {
      downSinceS = nowS;
      writtenSinceDown = 0;
      logError(
        "device database does not answer (connection pusher, knob PUSHER_DB_CONNECTION): REGISTERs are answered and their records kept in memory (pusher_devices_unsaved); they are written when it answers again",
      );
    }
    return;
  }
  if (outcome === "more") return;
  releaseDatabase();
  if (downSinceS) {
    logInfo(
      "device database answers again after " +
        (nowS - downSinceS) +
        " s: " +
        writtenSinceDown +
        " AORs written from memory",
    );
    downSinceS = 0;
  }
}

/**
 * One pass of retryDeviceDatabase, its statements forced: "down", "more" (a full batch: more may be due) or "done".
 * A database that is not held is probed only when a write fails.
 */
function writeUnsaved(nowS: number, held: boolean): "down" | "more" | "done" {
  if (held && !probeDatabase()) return "down";
  // The load at start is still running (a statement of it failed): the database stays held until it has failed.
  if (getNumber(STATE_TABLE, LOAD_PENDING_KEY) === 2) return "more";
  if (getNumber(STATE_TABLE, LOAD_PENDING_KEY) === 1) {
    if (!loadDevices(true)) return "down";
    KSR.htable.sht_seti(STATE_TABLE, LOAD_PENDING_KEY, 0);
  }
  const due = dueUnsaved(nowS);
  let probedAfterFailure = false;
  for (let i = 0; i < due.length; i++) {
    const aor = due[i];
    const outcome = withLock(DEVICES_TABLE, aor, function (): "written" | "failed" | "gone" {
      // Written by a worker meanwhile: nothing left to do.
      if (!isUnsaved(aor)) return "gone";
      const devices = readAor(aor, Date.now()).devices;
      const lastRegisteredAtMs = lastRegistrationMs(devices);
      return saveToDatabase(aor, lastRegisteredAtMs ? JSON.stringify(devices) : null, lastRegisteredAtMs)
        ? "written"
        : "failed";
    });
    if (outcome === "written") writtenSinceDown++;
    if (outcome !== "failed") continue;
    // The database answered the probe a moment ago: one more tells a database that went away from one that
    // refuses this record.
    if (!probedAfterFailure && !probeDatabase()) return "down";
    probedAfterFailure = true;
    withLock(DEVICES_TABLE, aor, function () {
      if (isUnsaved(aor)) KSR.htable.sht_seti(UNSAVED_TABLE, aor, nowS + REFUSED_RETRY_S);
    });
    logError(
      "device record of " +
        aor +
        " refused by the database, which answers otherwise: kept in memory, tried again in " +
        REFUSED_RETRY_S +
        " s",
    );
  }
  return due.length < RETRY_BATCH ? "done" : "more";
}

/** Up to RETRY_BATCH unsaved AORs whose retry time has come. */
function dueUnsaved(nowS: number): string[] {
  const due: string[] = [];
  const iterator = "pusher_unsaved";
  if (KSR.htable.sht_iterator_start(iterator, UNSAVED_TABLE) < 0) return due;
  while (due.length < RETRY_BATCH && KSR.htable.sht_iterator_next(iterator) > 0) {
    if (Number(KSR.pv.get("$shtitval(" + iterator + ")")) <= nowS)
      due.push(String(KSR.pv.get("$shtitkey(" + iterator + ")")));
  }
  KSR.htable.sht_iterator_end(iterator);
  return due;
}

export function devicesOf(aor: string): DeviceRecord[] {
  ensureDevicesLoaded();
  let devices = liveDevices(aor, Date.now());
  if (isEmpty(devices)) devices = legacyDevices(aor, Date.now());
  const list: DeviceRecord[] = [];
  for (const instance in devices) if (has(devices, instance)) list.push(devices[instance]);
  return list;
}

/** What saveDevice did: nothing, moved the last-REGISTER time only, or wrote a new or changed record. */
export type SaveOutcome = "unchanged" | "refreshed" | "stored";

/**
 * Stores or replaces the record of one device; a token it holds is taken from another device of the same AOR, or
 * of another AOR the REGISTER is authenticated for (`authenticatedAor`, "*" for any: mayTakeToken); otherwise both
 * keep it. With `mark` (register-marks.ts markOf) the AOR's item is marked in the same write: the REGISTER that
 * carried this record, sent again, changes nothing.
 */
export function saveDevice(record: DeviceRecord, mark?: string, authenticatedAor = ""): SaveOutcome {
  ensureDevicesLoaded();
  loadAor(record.aor);
  let previous: DeviceRecord | null = null;
  let gone: DeviceRecord[] = [];
  let evicted: DeviceRecord[] = [];
  const outcome = withLock(DEVICES_TABLE, record.aor, function (): SaveOutcome {
    const item = readAor(record.aor, record.registeredAtMs);
    const devices = item.devices;
    gone = item.expired;
    previous = has(devices, record.instance) ? devices[record.instance] : null;
    const same = previous !== null && bindingOf(previous) === bindingOf(record);
    if (same && record.registeredAtMs - (previous as DeviceRecord).registeredAtMs < REFRESH_AFTER_MS) {
      if (mark && item.marks.indexOf(mark) < 0) {
        KSR.htable.sht_sets(DEVICES_TABLE, record.aor, withMark(item.marks, mark) + JSON.stringify(devices));
      }
      return "unchanged";
    }
    devices[record.instance] = record;
    evicted = evictBeyondLimit(devices, record.instance);
    storeAor(record.aor, devices, mark);
    return same ? "refreshed" : "stored";
  });
  unindexAll(gone);
  for (let i = 0; i < evicted.length; i++) {
    unindexTokens(evicted[i]);
    logInfo(
      "device removed aor=" +
        record.aor +
        " instance=" +
        evicted[i].instance +
        " app=" +
        evicted[i].appId +
        ": the AOR has devices.maxPerAor (" +
        currentConfig().devices.maxPerAor +
        ") devices and this one registered longest ago",
    );
  }
  if (outcome !== "stored") return outcome;
  const keys = tokensOf(record);
  // Tokens the device no longer holds leave the index; those it keeps (a changed User-Agent, or the phone now
  // registered through another node) are not written again when the index names it already: in a cluster every
  // index write is a KDMQ request to each other node.
  if (previous) {
    const previousKeys = tokensOf(previous);
    for (let i = 0; i < previousKeys.length; i++)
      if (keys.indexOf(previousKeys[i]) < 0) unindexToken(previous, previousKeys[i]);
  }
  // Before every record is loaded, a device not in memory yet may hold the token: the load decides (adoptRow).
  const claim = loadedHere || getNumber(STATE_TABLE, LOAD_PENDING_KEY) === 0 ? undefined : authenticatedAor;
  // Written before the old holder is removed: a crash in between leaves a duplicate, never a lost token.
  for (let i = 0; i < keys.length; i++) {
    const owner = getJson<TokenOwner>(TOKENS_TABLE, keys[i]);
    if (owner && owner.aor === record.aor && owner.instance === record.instance) {
      if (owner.claim === claim) continue;
    } else if (owner) {
      if (!mayTakeToken(owner, record, authenticatedAor)) {
        logInfo(
          "device token also held by aor=" +
            owner.aor +
            " instance=" +
            owner.instance +
            ": both records kept (the REGISTER of aor=" +
            record.aor +
            " instance=" +
            record.instance +
            " is not authenticated for aor=" +
            owner.aor +
            ")",
        );
      } else {
        const moved = removeDevice(owner.aor, owner.instance, keys[i]);
        if (moved)
          logInfo(
            "device token moved from aor=" +
              owner.aor +
              " instance=" +
              owner.instance +
              " to aor=" +
              record.aor +
              " instance=" +
              record.instance,
          );
      }
    }
    setJson(TOKENS_TABLE, keys[i], tokenOwnerOf(record, claim));
  }
  return outcome;
}

/**
 * Removes one device's record (its token is dead, it de-registered, or its token moved); with `onlyWithToken`
 * only while it still holds that token, with `onlyRegisteredBeforeMs` only if its last written REGISTER is not
 * later (APNs: a token registered again after it became invalid is kept). Returns the removed record, or null.
 */
export function removeDevice(
  aor: string,
  instance: string,
  onlyWithToken?: string,
  onlyRegisteredBeforeMs?: number,
): DeviceRecord | null {
  ensureDevicesLoaded();
  aor = keyHolding(aor, instance);
  let gone: DeviceRecord[] = [];
  const removed = withLock(DEVICES_TABLE, aor, function (): DeviceRecord | null {
    const item = readAor(aor, Date.now());
    const devices = item.devices;
    if (!has(devices, instance)) return null;
    const record = devices[instance];
    if (onlyWithToken !== undefined && tokensOf(record).indexOf(onlyWithToken) < 0) return null;
    if (onlyRegisteredBeforeMs !== undefined && record.registeredAtMs > onlyRegisteredBeforeMs) return null;
    delete devices[instance];
    storeAor(aor, devices);
    gone = item.expired;
    return record;
  });
  unindexAll(gone);
  if (removed) unindexTokens(removed);
  return removed;
}

/**
 * A provider says `tokenKey` (`<provider>:<token>`) of the device is dead. Its `token` (what calls are pushed to):
 * the record is removed (removeDevice). Its Apple `alertToken` (Linphone's `:remote`, for call-ended, message and
 * refresh pushes): only that token goes, the record is rewritten without it, so its VoIP token still takes calls.
 * Nothing while the record holds neither, nor (`onlyRegisteredBeforeMs`) when its last written REGISTER is later.
 * Returns what went ("device", "alert token"), or null.
 */
export function dropDeadToken(
  aor: string,
  instance: string,
  tokenKey: string,
  onlyRegisteredBeforeMs?: number,
): "device" | "alert token" | null {
  ensureDevicesLoaded();
  aor = keyHolding(aor, instance);
  let gone: DeviceRecord[] = [];
  const dropped = withLock(DEVICES_TABLE, aor, function (): { record: DeviceRecord; device: boolean } | null {
    const item = readAor(aor, Date.now());
    const devices = item.devices;
    if (!has(devices, instance)) return null;
    const record = devices[instance];
    const at = tokensOf(record).indexOf(tokenKey);
    if (at < 0) return null;
    if (onlyRegisteredBeforeMs !== undefined && record.registeredAtMs > onlyRegisteredBeforeMs) return null;
    gone = item.expired;
    if (at === 0) {
      delete devices[instance];
    } else {
      // A copy (the record may be this process's cached item: readAor), its REGISTER time kept: retention is
      // counted from the phone's REGISTERs only.
      const kept = JSON.parse(JSON.stringify(record)) as DeviceRecord;
      delete kept.alertToken;
      devices[instance] = kept;
    }
    storeAor(aor, devices);
    return { record: record, device: at === 0 };
  });
  unindexAll(gone);
  if (!dropped) return null;
  if (dropped.device) unindexTokens(dropped.record);
  else unindexToken(dropped.record, tokenKey);
  return dropped.device ? "device" : "alert token";
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
  const device: CallDevice = {
    instance: record.instance,
    appId: record.appId,
    provider: record.provider,
    token: record.token,
  };
  if (record.pushKind) device.pushKind = record.pushKind;
  if (record.apnsTopic) device.apnsTopic = record.apnsTopic;
  if (record.fcmProjectId) device.fcmProjectId = record.fcmProjectId;
  if (record.sandbox) device.sandbox = true;
  if (record.alertToken) device.alertToken = record.alertToken;
  return device;
}
