// What `pusher start` hands Kamailio besides its own files: the sources flood detection never counts (loopback
// and the sources pusher.json trusts, as kamailio.cfg's PUSHER_TRUSTED_SOURCES), and a runtime copy of the config
// in which a Firebase app written before projectIds existed names its service account's project.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  clusterArguments,
  kamailioArguments,
  runtimeConfigText,
  runtimePaths,
  splitDatabasePassword,
  trustedSubnets,
} from "../../src/cli/kamailio-runtime";
import { validateConfig } from "../../src/config";

const FILES = { cfg: "/pkg/kamailio/kamailio.cfg", plugin: "/pkg/dist/pusher.js" };

function serviceAccount(dir: string, projectId: string): string {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const file = join(dir, `${projectId}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      type: "service_account",
      project_id: projectId,
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }),
      client_email: `pusher@${projectId}.iam.gserviceaccount.com`,
      token_uri: "https://oauth2.googleapis.com/token",
    }),
  );
  return file;
}

/** The value of `-A NAME=value` in Kamailio's arguments. */
function define(args: string[], name: string): string | undefined {
  const given = args.filter((arg, i) => args[i - 1] === "-A" && arg.startsWith(`${name}=`));
  expect(given.length).toBeLessThanOrEqual(1);
  return given[0]?.slice(name.length + 1);
}

describe("trustedSubnets", () => {
  it("is loopback, then kazoo.trustedSources and calls.trustedSources, each once, with a prefix length", () => {
    const config = validateConfig({
      kazoo: { trustedSources: ["10.1.2.3", "127.0.0.1/32"] },
      calls: { trustedSources: ["2001:db8::7", "10.1.2.3", "192.0.2.0/24"] },
    });
    expect(trustedSubnets(config)).toEqual([
      "127.0.0.0/8",
      "::1/128",
      "10.1.2.3/32",
      "127.0.0.1/32",
      "2001:db8::7/128",
      "192.0.2.0/24",
    ]);
  });

  it("is what Kamailio gets as PUSHER_TRUSTED_SOURCES, unless kamailio.defines sets its own", () => {
    const config = validateConfig({ kazoo: { trustedSources: ["10.1.2.3"] } });
    const paths = runtimePaths("/etc/pusher/pusher.json", config);
    expect(define(kamailioArguments(FILES, paths, config, ["udp:127.0.0.1:5060"]), "PUSHER_TRUSTED_SOURCES")).toBe(
      '"127.0.0.0/8,::1/128,10.1.2.3/32,127.0.0.1/32"',
    );
    const own = validateConfig({ kamailio: { defines: { PUSHER_TRUSTED_SOURCES: "127.0.0.1/32,192.0.2.0/24" } } });
    expect(define(kamailioArguments(FILES, paths, own, ["udp:127.0.0.1:5060"]), "PUSHER_TRUSTED_SOURCES")).toBe(
      '"127.0.0.1/32,192.0.2.0/24"',
    );
  });
});

describe("runtimeConfigText", () => {
  it("gives a Firebase app without projectIds its service account's project, and keeps the ones set", () => {
    const dir = mkdtempSync(join(tmpdir(), "pusher-runtime-"));
    const config = validateConfig({
      apps: {
        older: { firebase: { serviceAccountFile: serviceAccount(dir, "older-project") } },
        listed: {
          firebase: {
            serviceAccountFile: serviceAccount(dir, "listed-project"),
            projectIds: ["listed-project", "second-project"],
          },
        },
        unreadable: { firebase: { serviceAccountFile: join(dir, "missing.json") } },
      },
    });
    const runtime = validateConfig(JSON.parse(runtimeConfigText(config)));
    expect(runtime.apps.older.firebase?.projectIds).toEqual(["older-project"]);
    expect(runtime.apps.listed.firebase?.projectIds).toEqual(["listed-project", "second-project"]);
    // Left unset: the helper still pushes only to the service account's own project; `pusher check` says why.
    expect(runtime.apps.unreadable.firebase?.projectIds).toBeUndefined();
    expect(config.apps.older.firebase?.projectIds).toBeUndefined();
  });
});

describe("a cluster node's command line (kamailio.cfg WITH_CLUSTER)", () => {
  const cluster = {
    nodeId: 2,
    nodes: 5,
    dmqListen: "10.0.0.2:5090",
    peers: ["10.0.0.1:5090", "10.0.0.3:5090", "node4.example.net:5090", "10.0.0.5:5090"],
    database: "postgres://pusher@db.example.net:5432/pusher",
  };

  it("adds the DMQ socket after the SIP ones, WITH_CLUSTER, the node's knobs and three notification addresses", () => {
    const config = validateConfig({ cluster });
    const args = kamailioArguments(FILES, runtimePaths("/etc/pusher/pusher.json", config), config, [
      "udp:10.0.0.2:5060",
      "tcp:10.0.0.2:5060",
    ]);
    expect(args.filter((arg, i) => args[i - 1] === "-l")).toEqual([
      "udp:10.0.0.2:5060",
      "tcp:10.0.0.2:5060",
      "udp:10.0.0.2:5090",
    ]);
    expect(args.filter((arg, i) => args[i - 1] === "-A" && arg === "WITH_CLUSTER")).toHaveLength(1);
    expect(define(args, "PUSHER_NODE_ID")).toBe("2");
    expect(define(args, "PUSHER_CLUSTER_NODES")).toBe("5");
    expect(define(args, "PUSHER_DMQ_SERVER_ADDRESS")).toBe('"sip:10.0.0.2:5090"');
    expect(define(args, "PUSHER_DMQ_NOTIFICATION_ADDRESS")).toBe('"sip:10.0.0.1:5090"');
    expect(define(args, "PUSHER_DMQ_NOTIFICATION_ADDRESS_2")).toBe('"sip:10.0.0.3:5090"');
    expect(define(args, "PUSHER_DMQ_NOTIFICATION_ADDRESS_3")).toBe('"sip:node4.example.net:5090"');
    expect(define(args, "PUSHER_DMQ_NOTIFICATION_ADDRESS_4")).toBeUndefined();
    // The device records go to the cluster's database, never to the node's own sqlite file.
    expect(define(args, "PUSHER_DB_CONNECTION")).toBe('"pusher=>postgres://pusher@db.example.net:5432/pusher"');
    expect(define(args, "PUSHER_DB_MODULE")).toBe('"db_postgres.so"');
    // pusher.cfg's PostgreSQL settings (timeouts, start without the database) come with a postgres: URL only.
    expect(args.filter((arg, i) => args[i - 1] === "-A" && arg === "PUSHER_DB_POSTGRES")).toHaveLength(1);
  });

  it("adds nothing for a single node, nor for a cluster section that is off", () => {
    for (const config of [validateConfig({}), validateConfig({ cluster: { ...cluster, nodeId: 0 } })]) {
      expect(clusterArguments(config)).toEqual({ listen: [], defines: {} });
      const args = kamailioArguments(FILES, runtimePaths("/etc/pusher/pusher.json", config), config, [
        "udp:127.0.0.1:5060",
      ]);
      expect(args).not.toContain("WITH_CLUSTER");
      expect(args).not.toContain("PUSHER_DB_POSTGRES");
      expect(define(args, "PUSHER_DB_CONNECTION")).toBe('"pusher=>sqlite:////etc/pusher/pusher-state/devices.sqlite"');
    }
  });
});

describe("splitDatabasePassword", () => {
  it("takes the password out of a postgres:// URL into a libpq password file line, escaping : and \\", () => {
    expect(splitDatabasePassword("postgres://pusher:s3cr:et\\x@db.example.net:6432/pusher")).toEqual({
      url: "postgres://pusher@db.example.net:6432/pusher",
      passwordLine: "db.example.net:6432:pusher:pusher:s3cr\\:et\\\\x",
    });
    // libpq's default port when the URL names none.
    expect(splitDatabasePassword("postgres://pusher:pw@10.0.0.9/records").passwordLine).toBe(
      "10.0.0.9:5432:records:pusher:pw",
    );
  });

  it("leaves a URL without a password as it is", () => {
    expect(splitDatabasePassword("postgres://pusher@db/pusher")).toEqual({
      url: "postgres://pusher@db/pusher",
      passwordLine: null,
    });
  });
});
