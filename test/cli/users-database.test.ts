// `pusher users` keys a SIP user as the plugin, usrloc and the reference cfg's digest auth compare AORs
// (RFC 3261 §19.1.4): the user part as given, the domain (the digest realm) lower-cased.
import { describe, expect, it } from "vitest";
import { parseSipUser } from "../../src/cli/users-database";
import { aorKey } from "../../src/cli/devices-command";

describe("parseSipUser", () => {
  it("keeps the user's case and lower-cases the domain", () => {
    expect(parseSipUser("Alice@Example.COM")).toEqual({ username: "Alice", domain: "example.com" });
    expect(parseSipUser("alice@example.com")).toEqual({ username: "alice", domain: "example.com" });
  });

  it("names the same AOR `pusher devices` looks up", () => {
    const user = parseSipUser("Alice@Example.COM");
    expect(aorKey("Alice@Example.COM")).toBe(`${user.username}@${user.domain}`);
  });
});
