import { describe, expect, it } from "vitest";
import { contactExpires, decodeParam, parseContacts } from "../../src/plugin/parse-contact";

// Kazoo's own sample REGISTER Contact (kazoo-configs-kamailio, pusher role docs), verbatim: the token has a space.
const KAZOO_SEED_CONTACT =
  '<sip:user_1234567@192.168.1.1:61767;transport=TCP;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00004e05965e>";app-id=com.app.mymobileapp;pn-tok=34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw;pn-type=apple';
const KAZOO_DOC_CONTACT = "<sip:user@192.168.1.1>;reg-id=1;app-id=org.myorg.myapp;pn-tok=tok;pn-type=apple";

describe("decodeParam", () => {
  it.each([
    ["%2B15551234", "+15551234"],
    ["abc%3Adef", "abc:def"],
    ["a%20b", "a b"],
    ["plain", "plain"],
    ["", ""],
    ["a+b", "a+b"],
  ])("URL-decodes %j to %j", (raw, decoded) => {
    expect(decodeParam(raw)).toBe(decoded);
  });

  it.each(["%", "%E0%A4%A", "abc%zz", "100%", "%G1"])("keeps the raw text of the malformed escape %j", (raw) => {
    expect(decodeParam(raw)).toBe(raw);
  });
});

describe("parseContacts", () => {
  it("splits Kazoo's sample Contact into its URI, URI params and header params, keeping the space in pn-tok", () => {
    expect(parseContacts(KAZOO_SEED_CONTACT)).toEqual([
      {
        uri: "sip:user_1234567@192.168.1.1:61767;transport=TCP;ob",
        uriParams: { transport: "TCP", ob: "" },
        headerParams: {
          "reg-id": "1",
          "+sip.instance": "<urn:uuid:00000000-0000-0000-0000-00004e05965e>",
          "app-id": "com.app.mymobileapp",
          "pn-tok": "34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw",
          "pn-type": "apple",
        },
        conflicts: [],
      },
    ]);
  });

  it("parses the short form from Kazoo's documentation", () => {
    expect(parseContacts(KAZOO_DOC_CONTACT)).toEqual([
      {
        uri: "sip:user@192.168.1.1",
        uriParams: {},
        headerParams: { "reg-id": "1", "app-id": "org.myorg.myapp", "pn-tok": "tok", "pn-type": "apple" },
        conflicts: [],
      },
    ]);
  });

  it("keeps params inside the brackets as URI params and those after them as header params", () => {
    const [contact] = parseContacts("<sip:a@h;pn-tok=inside;app-id=x>;pn-tok=outside;expires=60");
    expect(contact.uriParams).toEqual({ "pn-tok": "inside", "app-id": "x" });
    expect(contact.headerParams).toEqual({ "pn-tok": "outside", expires: "60" });
  });

  it("gives every param of a contact without brackets to the header, as RFC 3261 §20.10 says", () => {
    expect(parseContacts("sip:alice@192.0.2.1:5060;pn-tok=abc;expires=0")).toEqual([
      {
        uri: "sip:alice@192.0.2.1:5060",
        uriParams: {},
        headerParams: { "pn-tok": "abc", expires: "0" },
        conflicts: [],
      },
    ]);
  });

  it("drops the URI headers part (after ?) from the URI params", () => {
    const [contact] = parseContacts("<sip:a@h;transport=tcp;pn-tok=x?Subject=hi>");
    expect(contact.uriParams).toEqual({ transport: "tcp", "pn-tok": "x" });
  });

  it.each([
    ["a URI param", "<sip:a@h;pn-tok=%2B1%3A2>", "uriParams", "+1:2"],
    ["a header param", "<sip:a@h>;pn-tok=%2B1%3A2", "headerParams", "+1:2"],
    ["a quoted header param", '<sip:a@h>;pn-tok="%2B1%3A2"', "headerParams", "+1:2"],
    ["a malformed URI param escape", "<sip:a@h;pn-tok=ab%zz>", "uriParams", "ab%zz"],
    ["a malformed header param escape", "<sip:a@h>;pn-tok=ab%zz", "headerParams", "ab%zz"],
  ] as const)("URL-decodes %s, keeping malformed escapes raw", (_label, header, where, token) => {
    expect(parseContacts(header)[0][where]["pn-tok"]).toBe(token);
  });

  it("lower-cases param names but not their values", () => {
    const [contact] = parseContacts("<sip:a@h;Transport=TCP>;PN-Type=Apple;App-ID=Com.Example");
    expect(contact.uriParams).toEqual({ transport: "TCP" });
    expect(contact.headerParams).toEqual({ "pn-type": "Apple", "app-id": "Com.Example" });
  });

  it("unquotes header param values and their backslash escapes", () => {
    const [contact] = parseContacts('<sip:a@h>;+sip.instance="<urn:uuid:1>";label="say \\"hi\\""');
    expect(contact.headerParams).toEqual({ "+sip.instance": "<urn:uuid:1>", label: 'say "hi"' });
  });

  it("keeps the first of two params with the same name, and names the ones whose values differ", () => {
    const [contact] = parseContacts("<sip:a@h;pn-tok=one;pn-tok=two;ob;ob>;app-id=first;APP-ID=second;pn-type=apple");
    expect(contact.uriParams["pn-tok"]).toBe("one");
    expect(contact.headerParams["app-id"]).toBe("first");
    expect(contact.conflicts.sort()).toEqual(["app-id", "pn-tok"]);
  });

  it("names a param whose URI and header forms differ as conflicting", () => {
    expect(parseContacts("<sip:a@h;pn-tok=one>;pn-tok=two")[0].conflicts).toEqual(["pn-tok"]);
    expect(parseContacts("<sip:a@h;pn-tok=same>;pn-tok=same")[0].conflicts).toEqual([]);
  });

  it("skips a contact whose URI hides a NUL or another control character", () => {
    expect(parseContacts("<sip:a\u0000b@h>;pn-tok=t;pn-type=apple;app-id=x")).toEqual([]);
  });

  it("ignores whitespace around params, names and values", () => {
    const [contact] = parseContacts("  <sip:a@h> ; app-id = x ;pn-type= apple  ;  ");
    expect(contact.headerParams).toEqual({ "app-id": "x", "pn-type": "apple" });
  });

  it("reads a param without a value as the empty string", () => {
    expect(parseContacts("<sip:a@h;ob>;lr").map((c) => [c.uriParams, c.headerParams])).toEqual([
      [{ ob: "" }, { lr: "" }],
    ]);
  });

  it("splits several contacts of one header on commas outside quotes and brackets", () => {
    const contacts = parseContacts(
      '"Smith, Bob" <sip:bob@h;x=a,b>;pn-tok=one, <sip:carol@h>;label="c,d";pn-tok=two,sip:dave@h;pn-tok=three',
    );
    expect(contacts.map((c) => c.uri)).toEqual(["sip:bob@h;x=a,b", "sip:carol@h", "sip:dave@h"]);
    expect(contacts.map((c) => c.headerParams["pn-tok"])).toEqual(["one", "two", "three"]);
    expect(contacts[1].headerParams.label).toBe("c,d");
  });

  it("accepts a display name before the brackets", () => {
    expect(parseContacts('"Alice A." <sips:alice@h>;expires=60')).toEqual([
      { uri: "sips:alice@h", uriParams: {}, headerParams: { expires: "60" }, conflicts: [] },
    ]);
  });

  // BUG (reported, src/plugin/parse-contact.ts parseOne): the first `<` is taken as the start of the URI even
  // inside the quoted display name, so this contact (and its push params) is dropped. Fix: look for `<` only
  // outside double quotes (the same scan splitOutside already does).
  it("finds the URI after a quoted display name that contains < and >", () => {
    expect(parseContacts('"<Bob>" <sip:bob@h>;pn-tok=t').map((c) => c.uri)).toEqual(["sip:bob@h"]);
  });

  it.each([
    ["an empty header", ""],
    ["only whitespace", "   "],
    ["the star contact of an unregister-all", "*"],
    ["a star with spaces", "  *  "],
    ["an unclosed bracket", "<sip:a@h;pn-tok=x"],
    ["a non-SIP URI", "<mailto:a@h>;pn-tok=x"],
    ["a tel URI", "<tel:+15551234>;pn-tok=x"],
    ["garbage", ";;;===,,,"],
    ["a lone bracket pair", "<>"],
    ["a bare word", "hello world"],
  ])("returns no contact for %s", (_label, header) => {
    expect(parseContacts(header)).toEqual([]);
  });

  it("skips the malformed contacts of a header and keeps the good ones", () => {
    const contacts = parseContacts("*, <mailto:x@h>, <sip:good@h>;pn-tok=t, garbage, <sip:unclosed@h");
    expect(contacts.map((c) => c.uri)).toEqual(["sip:good@h"]);
  });

  it("accepts the sip: scheme in any case", () => {
    expect(parseContacts("<SIP:a@h>").map((c) => c.uri)).toEqual(["SIP:a@h"]);
  });

  it("does not let a param named __proto__ or constructor change the params object", () => {
    const [contact] = parseContacts("<sip:a@h>;__proto__=x;constructor=y;pn-tok=t");
    expect(Object.getPrototypeOf(contact.headerParams)).toBe(Object.prototype);
    expect(contact.headerParams["pn-tok"]).toBe("t");
    expect(contact.headerParams.constructor).toBe("y");
  });
});

describe("contactExpires", () => {
  const contact = (params: string) => parseContacts(`<sip:a@h>${params}`)[0];

  it.each([
    ["its expires param before the Expires header", ";expires=0", "600", 0],
    ["the Expires header without a param", "", "600", 600],
    ["the registrar default without either", "", null, 3600],
    ["the registrar default for an empty Expires header", "", "", 3600],
    ["the Expires header when the param is not a plain number (-1)", ";expires=-1", "600", 600],
    ["the Expires header when the param is not a number at all", ";expires=never", "0", 0],
  ])("takes %s", (_what, params, expiresHeader, seconds) => {
    expect(contactExpires(contact(params), expiresHeader)).toBe(seconds);
  });
});
