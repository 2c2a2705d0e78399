// The `location` table `pusher start` creates for usrloc (WITH_USRLOCDB in kamailio/kamailio.cfg): Kamailio's
// schema and the version usrloc checks at start, created once, again without harm, private to Kamailio's user.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureLocationDatabase, locationDatabaseArguments, locationDatabaseOf } from "../../src/cli/location-database";

const dir = mkdtempSync(join(tmpdir(), "location-db-"));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sql(file: string, statement: string): string {
  return execFileSync("sqlite3", [file, statement], { encoding: "utf8" }).trim();
}

describe("ensureLocationDatabase", () => {
  it("creates the location table with the version usrloc 5.6 and 6.0 check (9), mode 0600, and changes nothing when run again", () => {
    const file = locationDatabaseOf(dir);
    ensureLocationDatabase(file);
    sql(
      file,
      "INSERT INTO location (ruid, username, domain, contact) VALUES ('r1', 'alice', 'example.com', 'sip:a@127.0.0.2')",
    );
    ensureLocationDatabase(file);
    expect(sql(file, "SELECT table_name || ' ' || table_version FROM version ORDER BY table_name")).toBe(
      "location 9\nlocation_attrs 1",
    );
    expect(sql(file, "SELECT username FROM location")).toBe("alice");
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it("turns WITH_USRLOCDB on for Kamailio with the file's sqlite URL", () => {
    expect(locationDatabaseArguments("/var/lib/kamailio-pusher/location.sqlite")).toEqual([
      "-A",
      "WITH_USRLOCDB",
      "-A",
      'PUSHER_LOCATION_DB_URL="sqlite:////var/lib/kamailio-pusher/location.sqlite"',
    ]);
  });
});
