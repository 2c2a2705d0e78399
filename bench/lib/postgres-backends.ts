// The CPU the PostgreSQL server spends for the Kamailio under test: its backends of the `pusher` role (one per
// Kamailio process that sent a statement), read from /proc.
import type { PostgresServer } from "../../test/support/postgres";
import { cpuMsOf } from "./kamailio-direct";

/** CPU (ms) of each PostgreSQL backend of the `pusher` role, by pid. */
export function backendCpuMs(postgres: PostgresServer): Map<number, number> {
  const pids = postgres
    .query("SELECT pid FROM pg_stat_activity WHERE usename = 'pusher'")
    .split("\n")
    .filter(Boolean)
    .map(Number);
  return new Map(pids.map((pid) => [pid, cpuMsOf(pid)]));
}
