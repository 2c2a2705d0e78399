import { describe, expect, it } from "vitest";
import { CALLER_ID_HEADERS, MAX_CALLER_ID_LENGTH, parseCallerId, pickCallerId } from "../../src/plugin/caller-id";

describe("parseCallerId", () => {
  it.each([
    ["a quoted display name", '"Alice" <sip:+15551234@example.com>;tag=abc', { number: "+15551234", name: "Alice" }],
    [
      "a quoted display name with spaces",
      '"Alice B. Smith" <sip:1001@example.com>',
      { number: "1001", name: "Alice B. Smith" },
    ],
    ["an unquoted display name", "Alice Smith <sip:1001@example.com>;tag=x", { number: "1001", name: "Alice Smith" }],
    ["no display name", "<sip:+15551234@example.com>;tag=abc", { number: "+15551234", name: "" }],
    ["an empty quoted display name", '"" <sip:1001@example.com>', { number: "1001", name: "" }],
    ["an escaped backslash in the display name", '"A\\\\B" <sip:1001@h>', { number: "1001", name: "A\\B" }],
    ["a comma in the display name", '"Smith, Bob" <sip:1001@h>', { number: "1001", name: "Smith, Bob" }],
    ["a sips: URI", '"S" <sips:1001@h:5061;transport=tls>', { number: "1001", name: "S" }],
    ["an upper-case scheme", "<SIP:1001@h>", { number: "1001", name: "" }],
    ["URI params after the user", "<sip:1001@h;user=phone>", { number: "1001", name: "" }],
    ["a tel: URI", '"Bob" <tel:+15551234;phone-context=example.com>', { number: "+15551234", name: "Bob" }],
    ["a bare tel: URI", "tel:+15551234", { number: "+15551234", name: "" }],
    ["an addr-spec without brackets", "sip:+15551234@example.com;tag=abc", { number: "+15551234", name: "" }],
    ["leading and trailing whitespace", "   <sip:1001@h>   ", { number: "1001", name: "" }],
    ["a percent-encoded user", "<sip:%2B15551234@example.com>", { number: "+15551234", name: "" }],
    ["a percent-encoded tel number", "<tel:%2B1-555-1234>", { number: "+1-555-1234", name: "" }],
    ["a malformed escape in the user (kept raw)", "<sip:%ZZ1001@h>", { number: "%ZZ1001", name: "" }],
    ["a SIP URI without a user", '"Anonymous" <sip:anonymous.invalid>', { number: "", name: "Anonymous" }],
    ["a SIP URI without a user and without a name", "<sip:example.com>", { number: "", name: "" }],
  ])("parses %s", (_label, header, caller) => {
    expect(parseCallerId(header)).toEqual(caller);
  });

  it("removes stray quotes from an unbalanced display name, as Kazoo does", () => {
    expect(parseCallerId('"Alice <sip:1001@h>')).toEqual({ number: "1001", name: "Alice" });
  });

  // BUG (reported, src/plugin/caller-id.ts): the doc comment promises that unescaping `\x` gives "the name the
  // caller sent", but the final `name.replace(/"/g, "")` also deletes the escaped quotes it has just unescaped:
  // `"Alice \"Al\" Smith"` comes out as `Alice Al Smith`. Fix: strip `"` only from a name that was not a
  // well-formed quoted-string (i.e. move the replace into an else branch of the quoted-string check).
  it("keeps escaped quotes of a quoted display name as quotes", () => {
    expect(parseCallerId('"Alice \\"Al\\" Smith" <sip:1001@h>')).toEqual({ number: "1001", name: 'Alice "Al" Smith' });
  });

  // BUG (reported): the first `<` is taken as the start of the URI even inside the quoted display name.
  it("finds the URI after a quoted display name that contains < and >", () => {
    expect(parseCallerId('"<Alice>" <sip:1001@h>')).toEqual({ number: "1001", name: "<Alice>" });
  });

  // A name or number is shown on a lock screen: 256 UTF-16 units are more than any shows (docs/security.md).
  it("cuts a name and a number longer than 256 characters, ending in …, never inside a surrogate pair", () => {
    const long = parseCallerId(`"${"N".repeat(8000)}" <sip:${"1".repeat(300)}@h>`)!;
    expect(long).toEqual({
      number: "1".repeat(MAX_CALLER_ID_LENGTH - 1) + "…",
      name: "N".repeat(MAX_CALLER_ID_LENGTH - 1) + "…",
    });
    const emoji = parseCallerId(`"${"N".repeat(MAX_CALLER_ID_LENGTH - 2)}📞📞" <sip:1@h>`)!;
    expect(emoji.name).toBe("N".repeat(MAX_CALLER_ID_LENGTH - 2) + "…");
    expect(parseCallerId(`"${"N".repeat(MAX_CALLER_ID_LENGTH)}" <sip:1@h>`)!.name).toBe(
      "N".repeat(MAX_CALLER_ID_LENGTH),
    );
  });

  it.each([
    ["an empty value", ""],
    ["only whitespace", "  \t "],
    ["an unclosed bracket", '"Alice" <sip:1001@h'],
    ["a non-SIP URI", "<mailto:alice@example.com>"],
    ["an http URI", "<http://example.com/1001>"],
    ["a bare word", "anonymous"],
    ["empty brackets", "<>"],
  ])("returns null for %s", (_label, header) => {
    expect(parseCallerId(header)).toBeNull();
  });
});

describe("pickCallerId", () => {
  const all = {
    "Remote-Party-ID": '"RPID" <sip:1111@h>;party=calling;screen=yes',
    "P-Asserted-Identity": '"PAI" <sip:2222@h>',
    "P-Preferred-Identity": '"PPI" <sip:3333@h>',
    From: '"From" <sip:4444@h>;tag=x',
  };

  it("reads the headers in Kazoo's order: Remote-Party-ID, P-Asserted-Identity, P-Preferred-Identity, From", () => {
    expect(CALLER_ID_HEADERS).toEqual(["Remote-Party-ID", "P-Asserted-Identity", "P-Preferred-Identity", "From"]);
  });

  it.each([
    ["Remote-Party-ID when every header is there", all, { number: "1111", name: "RPID" }],
    [
      "P-Asserted-Identity without Remote-Party-ID",
      { ...all, "Remote-Party-ID": null },
      { number: "2222", name: "PAI" },
    ],
    [
      "P-Preferred-Identity without RPID and PAI",
      { ...all, "Remote-Party-ID": null, "P-Asserted-Identity": null },
      { number: "3333", name: "PPI" },
    ],
    ["From when it is the only header", { From: all.From }, { number: "4444", name: "From" }],
    ["the next header when one is empty", { ...all, "Remote-Party-ID": "" }, { number: "2222", name: "PAI" }],
    [
      "the next header when one does not parse",
      { ...all, "Remote-Party-ID": "<mailto:x@h>" },
      { number: "2222", name: "PAI" },
    ],
    [
      "the next header when one has neither number nor name",
      { ...all, "Remote-Party-ID": "<sip:example.com>", "P-Asserted-Identity": "garbage" },
      { number: "3333", name: "PPI" },
    ],
    [
      "a header with only a name",
      { "P-Asserted-Identity": '"Reception" <sip:h>', From: all.From },
      { number: "", name: "Reception" },
    ],
    [
      "a header with only a number",
      { "P-Asserted-Identity": "<sip:2222@h>", From: all.From },
      { number: "2222", name: "" },
    ],
    ["nothing when every header is missing", {}, { number: "", name: "" }],
    [
      "nothing when no header parses",
      { "Remote-Party-ID": "", "P-Asserted-Identity": "junk", "P-Preferred-Identity": "<sip:1@h", From: "<sip:h>" },
      { number: "", name: "" },
    ],
  ])("picks %s", (_label, headers, caller) => {
    expect(pickCallerId(headers as { [header: string]: string | null }, true)).toEqual(caller);
  });

  it("ignores headers it does not know", () => {
    expect(pickCallerId({ "X-Caller": "<sip:9999@h>", Contact: "<sip:8888@h>" }, true)).toEqual({
      number: "",
      name: "",
    });
  });

  it("reads only From from a source that is not trusted: the asserted identities are the caller's own words there", () => {
    expect(pickCallerId(all, false)).toEqual({ number: "4444", name: "From" });
    expect(pickCallerId({ "P-Asserted-Identity": '"Your Bank" <sip:1000@h>', From: "<sip:h>" }, false)).toEqual({
      number: "",
      name: "",
    });
  });
});
