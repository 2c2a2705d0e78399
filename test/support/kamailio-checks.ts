// What a test can ask a running Kamailio after its SIP traffic, to prove the plugin kept its own house: no call
// left in pusher_calls, no error of the plugin in Kamailio's log, and no htable slot lock left held.
import { readFileSync } from "node:fs";
import { join } from "node:path";

type Rpc = (...command: string[]) => string;

/**
 * Keys of pusher_calls that belong to calls (call:, wait:, ringing:, callid:): empty once every call ended.
 * (Registration tokens share the table and live their own lifetime.)
 */
export function callItems(rpc: Rpc): string[] {
  const dump = rpc("htable.dump", "pusher_calls");
  return [...dump.matchAll(/name: ((?:call|wait|ringing|callid):\S*)/g)].map((match) => match[1]);
}

/**
 * pusher_calls' items, one `name value` line each, without the pushes remembered until their results come
 * (`sent:…`, src/plugin/sent-pushes.ts: they name the Call-ID and AOR a result must name, and expire on their
 * own): what is left of calls, for a test to look for a call's Call-ID or AOR in once it ended.
 */
export function callState(rpc: Rpc): string {
  const dump = rpc("htable.dump", "pusher_calls");
  return [...dump.matchAll(/^\s*name: (\S+)\s*\n\s*value: (.*)$/gm)]
    .filter((match) => !match[1].startsWith("sent:"))
    .map((match) => `${match[1]} ${match[2]}`)
    .join("\n");
}

/** The htables kamailio/pusher.cfg defines, read from the cfg itself. */
export function pusherTables(): string[] {
  const cfg = readFileSync(join(import.meta.dirname, "..", "..", "kamailio", "pusher.cfg"), "utf8");
  return [...cfg.matchAll(/^modparamx?\("htable",\s*"htable",\s*"([A-Za-z0-9_]+)=>/gm)].map((match) => match[1]);
}

/**
 * Lines of Kamailio's log that say the plugin failed: an entry point that threw (app_jsdt logs its stack and
 * "error executing"), or a KSR.htable call on a table pusher.cfg does not define (htable: "No such htable",
 * "cannot get hash table").
 */
export function pluginErrorsIn(output: string): string[] {
  return output.split("\n").filter((line) => /app_jsdt_run_ex\(\)|No such htable|cannot get hash table/.test(line));
}

/**
 * Dumps every table of pusher.cfg. htable.dump takes each slot's lock in turn, so a lock a JS entry point took
 * (KSR.htable.sht_lock) and never released makes it hang: `rpc` must time out (pusher-process.ts's does).
 */
export function dumpEveryPusherTable(rpc: Rpc): void {
  for (const table of pusherTables()) rpc("htable.dump", table);
}
