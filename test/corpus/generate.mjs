#!/usr/bin/env node
// Writes the hostile-input corpus: raw SIP REGISTERs and INVITEs (test/corpus/messages/*.sip, bytes exactly as
// sent, NUL and non-UTF-8 included) and test/corpus/manifest.json saying what each must and must not do.
// test/faults/hostile-input.test.ts sends them. Run `node test/corpus/generate.mjs` after changing this file
// and commit its output. Strings here are "binary" strings: one character per byte, written as latin1.
//
// The topology is a deployment's (test/support/topology.ts): users live on the domain DOMAIN, a name, never the
// proxy's address; the hostile sender, the victim and the sleeper each sit on their own loopback address, and a
// Contact user is never the AOR's user (c-<user>).
// Placeholders the sender fills in: @@ADDRESS@@ and @@PORT@@ (its own address and UDP port: Via, the Contacts of
// new AORs and of callers), @@VICTIM_ADDRESS@@ and @@VICTIM_PORT@@ (where the victim's phone registered from:
// a hostile REGISTER for the victim names the victim's own Contact URI, the binding and device it would take
// over), @@BRANCH@@ (a fresh Via branch).
// Targets: `victim` already has a good device before the corpus runs; a hostile REGISTER for it must change
// nothing. `fresh_<n>` AORs have none; a valid REGISTER may create one. INVITEs go to `sleeper`, a phone whose
// calls are pushed, so every push body can be compared with what the INVITE said.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = join(HERE, "messages");
const APP_ID = "com.app.mymobileapp";
const GOOD_TOKEN = "0123456789abcdef0123456789abcdef";
const UA = "MyMobileApp iOS 1.0";
// test/support/topology.ts DOMAIN (hostile-input.test.ts checks that the manifest's domain is that one).
const DOMAIN = "example.com";
/** The sender's host:port, and the victim phone's (see the placeholders above). */
const SENDER = "@@ADDRESS@@:@@PORT@@";
const VICTIM = "@@VICTIM_ADDRESS@@:@@VICTIM_PORT@@";
const aorOf = (user) => `${user}@${DOMAIN}`;
/** The Contact user of `user`'s phone: never the AOR's user. */
const contactUserOf = (user) => `c-${user}`;

const entries = [];
// Requests Kamailio's core drops before any route runs, so no cfg can answer them (receive_msg: "parsing relevant
// headers failed" / "required headers not found"; tcp_read: "buffer overrun" above its TCP read buffer).
const UNPARSABLE = "Kamailio core drops a request whose headers it cannot parse";
const TOO_BIG = "Kamailio's TCP read buffer overruns: it closes the connection";
const files = new Map();
let counter = 0;

function add(name, raw, meta) {
  counter += 1;
  const file = `${String(counter).padStart(3, "0")}-${name}.sip`;
  files.set(file, raw);
  entries.push({ file, transport: Buffer.byteLength(raw, "latin1") > 60000 ? "tcp" : "udp", ...meta });
}

function request(method, target, headers, callId) {
  const lines = [
    `${method} ${target} SIP/2.0`,
    `Via: SIP/2.0/UDP ${SENDER};branch=@@BRANCH@@;rport`,
    "Max-Forwards: 70",
    ...headers,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    "Content-Length: 0",
  ];
  return lines.join("\r\n") + "\r\n\r\n";
}

function registerOf(user, contactLines, { expires = "600", extra = [], userAgent = UA } = {}) {
  const headers = [`From: <sip:${aorOf(user)}>;tag=corpus${counter + 1}`, `To: <sip:${aorOf(user)}>`, ...contactLines];
  if (expires !== null) headers.push(`Expires: ${expires}`);
  headers.push(`User-Agent: ${userAgent}`, ...extra);
  return request("REGISTER", `sip:${DOMAIN}`, headers, `corpus-register-${counter + 1}@hostile`);
}

/** The Contact URI (no brackets) of `user`'s phone: the victim's own for the victim, else at the sender. */
const contactUri = (user, hostPort = user === "victim" ? VICTIM : SENDER) => `sip:${contactUserOf(user)}@${hostPort}`;
const contact = (user, params, uriParams = "") => `Contact: <${contactUri(user)}${uriParams}>${params}`;

// ---- Hostile values: every one is refused wherever a push param takes it. ----
const hostile = {
  "dquote": '"',
  "backslash": "\\",
  "escaped-quote": '\\"',
  "script": "</script><script>alert(1)</script>",
  "json-break": '","aps":{"alert":"pwned"},"x":"',
  "json-object": '{"token":"evil"}',
  "json-array": "[1,2,3]",
  "nul": "ab\x00cd",
  "nul-encoded": "ab%00cd",
  "crlf-encoded": "ab%0D%0AX-Injected:%201",
  "lf-encoded": "ab%0Acd",
  "quote-encoded": "ab%22cd",
  "non-utf8": "ab\xff\xfecd",
  "overlong-utf8": "ab\xc0\xafcd",
  "lone-continuation": "\x80\x81\x82",
  "utf8-emoji": "\xf0\x9f\x93\x9e",
  "path-traversal": "../../../etc/passwd",
  "slash-encoded": "abc%2F..%2Fdef",
  "sql": "x' OR '1'='1",
  "spaces-only": "   ",
  "empty": "",
  "tab": "ab\tcd",
  "long-5000": "a".repeat(5000),
  "semicolon-encoded": "ab%3Bpn-tok%3Devil",
  "percent-broken": "%zz%",
  "unicode-escape": "\\u0022\\u003c",
  "template": "${process.exit()}",
  "proto": "__proto__",
  "html-entity": "&quot;&lt;",
};

// Values that must be quoted to survive in a header param (SIP tokens cannot carry them).
function paramValue(value) {
  return /^[A-Za-z0-9_.!~*'()%+-]*$/.test(value) && value !== "" ? value : `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

// 1. Each hostile value in each legacy push param of the victim (header param and URI param forms).
for (const [name, value] of Object.entries(hostile)) {
  for (const param of ["pn-tok", "app-id", "pn-type"]) {
    const params = { "app-id": APP_ID, "pn-type": "apple", "pn-tok": "fedcba9876543210fedcba9876543210" };
    params[param] = value;
    const header = Object.entries(params).map(([k, v]) => `;${k}=${paramValue(v)}`).join("");
    // `__proto__` is within the app id alphabet: a (useless) app id, stored like any other, never an object key.
    const verdict = param === "app-id" && name === "proto" ? { expect: "maybe", tokens: [params["pn-tok"]] } : { expect: "unchanged" };
    add(`victim-${param}-${name}`, registerOf("victim", [contact("victim", header)]), { method: "REGISTER", aor: aorOf("victim"), ...verdict });
    if (!/[\x00-\x20"\\;?<>]/.test(value) && value !== "") {
      const uri = Object.entries(params).map(([k, v]) => `;${k}=${v}`).join("");
      add(`victim-uri-${param}-${name}`, registerOf("victim", [contact("victim", "", uri)]), { method: "REGISTER", aor: aorOf("victim"), ...verdict });
    }
  }
  // RFC 8599 form: pn-prid and pn-param.
  add(`victim-pn-prid-${name}`, registerOf("victim", [contact("victim", `;pn-provider=apns;pn-param=ABCDE12345.${APP_ID}.voip;pn-prid=${paramValue(value)}`)]), {
    method: "REGISTER",
    aor: aorOf("victim"),
    expect: "unchanged",
  });
  add(`victim-pn-param-${name}`, registerOf("victim", [contact("victim", `;pn-provider=apns;pn-param=${paramValue(value)};pn-prid=${GOOD_TOKEN}`)]), {
    method: "REGISTER",
    aor: aorOf("victim"),
    expect: "unchanged",
  });
}

// 2. Raw bytes that break the line: bare CR, bare LF, CRLF inside a quoted param, NUL in the Contact.
const lineBreakers = { "bare-cr": "ab\rcd", "bare-lf": "ab\ncd", "crlf-header": `ab\r\nX-Injected: 1\r\nContact: <${contactUri("victim", "@@VICTIM_ADDRESS@@:9")}>;pn-tok=` + "eeee".repeat(8) + ";app-id=" + APP_ID + ";pn-type=apple" };
for (const [name, value] of Object.entries(lineBreakers)) {
  // A bare LF ends the header line: the rest is no header at all, and Kamailio's core drops the request.
  const unanswered = name === "bare-lf" ? { unanswered: UNPARSABLE } : {};
  // CRLF in the raw bytes ends the header: what follows is a real, valid Contact header (and `ab` a short but
  // well-formed token). SIP has no way to tell; the request is valid and may store both.
  const verdict = name === "crlf-header" ? { expect: "maybe", tokens: ["ab", "eeee".repeat(8)] } : { expect: "unchanged" };
  add(`victim-raw-${name}`, registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${value}`)]), { method: "REGISTER", aor: aorOf("victim"), ...verdict, ...unanswered });
  add(`victim-raw-quoted-${name}`, registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok="${value}"`)]), { method: "REGISTER", aor: aorOf("victim"), ...verdict, ...unanswered });
}
add("victim-nul-in-uri", registerOf("victim", [`Contact: <${contactUri("victim")}\x00;pn-tok=${"dd".repeat(16)}>;app-id=${APP_ID};pn-type=apple`]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", knownBug: "nul-in-contact-uri" });

// 3. Tokens far too long: 64 KiB (TCP; no datagram holds it) and 4097 characters (one over the limit).
for (const [name, token] of Object.entries({ "64kib": "ab".repeat(32768), "4097": "a".repeat(4097), "64kib-fcm": "A".repeat(65536) })) {
  const type = name.endsWith("fcm") ? "firebase" : "apple";
  const unanswered = name.startsWith("64kib") ? { unanswered: TOO_BIG } : {};
  add(`victim-long-token-${name}`, registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=${type};pn-tok=${token}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", ...unanswered });
}

// 4. Tokens in the wrong alphabet for their provider.
const wrongAlphabet = ["abc_def_0123456789", "abcd-ef01-2345-6789", "YWJjZGVm+/==", "0123:4567", "abc.def.ghi", "https://evil.example/push", "tok%20with%20two%20%20spaces", "\xe9\xe8\xe0"];
for (const [i, token] of wrongAlphabet.entries()) {
  add(`victim-alphabet-apple-${i}`, registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${paramValue(token)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
  add(`victim-alphabet-rfc-${i}`, registerOf("victim", [contact("victim", `;pn-provider=apns;pn-param=ABCDE12345.${APP_ID}.voip;pn-prid=${paramValue(token)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
}
add("victim-alphabet-webpush-http", registerOf("victim", [contact("victim", `;pn-provider=webpush;pn-prid="http://evil.example/x"`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });

// 5. Duplicate and conflicting push params.
add("victim-conflicting-tok", registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"a1".repeat(16)};pn-tok=${"b2".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", knownBug: "conflicting-params" });
add("victim-conflicting-app", registerOf("victim", [contact("victim", `;app-id=${APP_ID};app-id=com.other.app;pn-type=apple;pn-tok=${"a3".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", knownBug: "conflicting-params" });
add("victim-conflicting-type", registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-type=firebase;pn-tok=${"a4".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", knownBug: "conflicting-params" });
add("victim-conflicting-uri-vs-header", registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"a5".repeat(16)}`, `;pn-tok=${"b6".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", knownBug: "conflicting-params" });
add("victim-conflicting-provider", registerOf("victim", [contact("victim", `;pn-provider=apns;pn-provider=fcm;pn-param=ABCDE12345.${APP_ID}.voip;pn-prid=${"a7".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", knownBug: "conflicting-params" });
add("fresh-duplicate-same", registerOf("fresh_dup", [contact("fresh_dup", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"c1".repeat(16)};pn-tok=${"c1".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("fresh_dup"), expect: "stores", tokens: ["c1".repeat(16)] });

// 6. Many Contacts: 40 Contact headers, and one header with 90 contacts, all with refused tokens (90: a datagram's worth); then a valid
// REGISTER with 20 contacts of its own AOR.
add("victim-many-contact-headers", registerOf("victim", Array.from({ length: 40 }, (_, i) => `Contact: <${contactUri("victim", `@@VICTIM_ADDRESS@@:${10000 + i}`)}>;app-id=${APP_ID};pn-type=apple;pn-tok=bad_${i}`)), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
add("victim-many-contacts-one-header", registerOf("victim", ["Contact: " + Array.from({ length: 90 }, (_, i) => `<${contactUri("victim", `@@VICTIM_ADDRESS@@:${20000 + i}`)}>;app-id=${APP_ID};pn-type=apple;pn-tok=bad-${i}`).join(", ")]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
// The plugin reads the push params of the first 16 contacts of a REGISTER, and an AOR keeps devices.maxPerAor (10)
// devices, a new one replacing the one registered longest ago: the last 10 of the first 16 stay.
add("fresh-twenty-contacts", registerOf("fresh_many", ["Contact: " + Array.from({ length: 20 }, (_, i) => `<${contactUri("fresh_many", `@@ADDRESS@@:${30000 + i}`)}>;app-id=${APP_ID};pn-type=apple;pn-tok=${(0xd000 + i).toString(16)}${"0".repeat(28)}`).join(", ")]), {
  method: "REGISTER",
  aor: aorOf("fresh_many"),
  expect: "stores",
  tokens: Array.from({ length: 10 }, (_, i) => `${(0xd000 + 6 + i).toString(16)}${"0".repeat(28)}`),
});

// 7. `Contact: *` with params or with a non-zero Expires: invalid (RFC 3261 §10.2.2), must remove nothing.
add("victim-star-with-params", registerOf("victim", [`Contact: *;app-id=${APP_ID};pn-tok=${"e1".repeat(16)}`], { expires: "0" }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
add("victim-star-expires-600", registerOf("victim", ["Contact: *"], { expires: "600" }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
add("victim-star-no-expires", registerOf("victim", ["Contact: *"], { expires: null }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
add("victim-star-and-contact", registerOf("victim", ["Contact: *", contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"e2".repeat(16)}`)], { expires: "0" }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
add("victim-star-twice", registerOf("victim", ["Contact: *, *"], { expires: "0" }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });

// 8. Expires values: huge ones are valid (the registrar caps them); malformed ones must not remove the device.
add("fresh-huge-expires-header", registerOf("fresh_huge1", [contact("fresh_huge1", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"f1".repeat(16)}`)], { expires: "4294967296" }), { method: "REGISTER", aor: aorOf("fresh_huge1"), expect: "stores", tokens: ["f1".repeat(16)] });
add("fresh-huge-expires-param", registerOf("fresh_huge2", [contact("fresh_huge2", `;expires=99999999999999999999;app-id=${APP_ID};pn-type=apple;pn-tok=${"f2".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("fresh_huge2"), expect: "maybe" , tokens: ["f2".repeat(16)] });
for (const [name, value] of Object.entries({ negative: "-1", word: "never", hex: "0x10", float: "1.5", "minus-zero": "-0", blank: " " })) {
  add(`victim-expires-header-${name}`, registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"f3".repeat(16)}`)], { expires: value }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
  add(`victim-expires-param-${name}`, registerOf("victim", [`Contact: <${contactUri("victim")}>;expires=${paramValue(value)}`]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
}

// 9. pn-provider nobody supports (555), and an RFC 8599 query for one.
for (const provider of ["unknown", "apns2", "FCM.evil", "webpush%00", "\xff"]) {
  add(`victim-unknown-provider-${counter}`, registerOf("victim", [contact("victim", `;pn-provider=${paramValue(provider)};pn-prid=${"ab".repeat(16)};pn-param=x`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
}

// 10. Hostile envelope around valid-looking params: AOR of someone else in From, odd To, no User-Agent.
add("victim-from-other-to-victim-no-ua", registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"9a".repeat(16)}`)], { userAgent: "Evil/1.0" }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
add("victim-to-with-quote-user", registerOf("victim'--", [contact("victim'--", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"9b".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("victim'--"), expect: "maybe", tokens: ["9b".repeat(16)] });
add("fresh-sql-quote-user", registerOf("o'neil", [contact("o'neil", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"9c".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("o'neil"), expect: "stores", tokens: ["9c".repeat(16)] });

// Headers longer than the plugin reads (knobs PUSHER_MAX_CONTACT_BYTES 8192, PUSHER_MAX_HEADER_BYTES 1024): cfg
// answers 400 before any JavaScript runs (sections 12 and 13 below, and the 8 KB caller names here).
const TOO_LONG = { status: 400, reason: "Header Too Long" };

// ---- INVITEs to `sleeper`: hostile caller ids; the push must carry exactly what was sent. ----
// Names as the plugin must read them: a quoted display name is unquoted and unescaped (RFC 3261 quoted-pair).
const names = {
  plain: "Alice",
  quote: 'Al\\"ice',
  backslash: "C:\\\\temp\\\\",
  script: "</script><script>alert(1)</script>",
  "json-break": '\\",\\"aps\\":{\\"alert\\":\\"pwned\\"},\\"x\\":\\"',
  "json-object": '{\\"call-id\\":\\"forged\\"}',
  "trailing-backslash": "Bob \\\\",
  braces: "}}]]{{[[",
  "utf8-name": "J\xc3\xbcrgen M\xc3\xbcller",
  emoji: "\xf0\x9f\x93\x9e Call",
  "non-utf8": "Caf\xe9",
  "lone-surrogate-bytes": "\xed\xa0\x80",
  "u2028": "line\xe2\x80\xa8sep",
  "long-8k": "N".repeat(8000),
  "percent": "%22%7D%7B",
  "template": "${7*7}{{7*7}}",
  "tab": "a\tb",
  "comma-semicolon": "a, b; c",
  "angle": "<sip:evil@example.com>",
  "unicode-escape": "\\\\u0022",
};
const unquote = (quoted) => quoted.replace(/\\(.)/g, "$1");
const isUtf8 = (binary) => {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(binary, "latin1"));
    return true;
  } catch {
    return false;
  }
};
const asText = (binary) => Buffer.from(binary, "latin1").toString("utf8");

// The caller's Contact: at the sender, its user not the caller's number.
const CALLER_CONTACT = `Contact: <sip:caller@${SENDER}>`;
function inviteOf(callId, headers) {
  return request("INVITE", `sip:${aorOf("sleeper")}`, [...headers, `To: <sip:${aorOf("sleeper")}>`, CALLER_CONTACT], callId);
}
for (const [name, quoted] of Object.entries(names)) {
  const expectedName = unquote(quoted);
  const caller = { number: "15551230001", name: isUtf8(expectedName) ? asText(expectedName) : null };
  for (const header of ["From", "P-Asserted-Identity", "Remote-Party-ID"]) {
    const callId = `corpus-invite-${counter + 1}@hostile`;
    const lines = [];
    if (header === "From") lines.push(`From: "${quoted}" <sip:${aorOf("15551230001")}>;tag=corpus${counter + 1}`);
    else lines.push(`From: "Decoy" <sip:${aorOf("15550000000")}>;tag=corpus${counter + 1}`, `${header}: "${quoted}" <sip:${aorOf("15551230001")}>${header === "Remote-Party-ID" ? ";party=calling;screen=yes" : ""}`);
    // Not UTF-8: once made the plugin throw in Duktape (see hostile-input.test.ts); still marked to test it apart.
    const bug = caller.name === null ? { knownBug: "non-utf8" } : {};
    // Longer than PUSHER_MAX_HEADER_BYTES: answered 400 before the plugin runs, never pushed.
    const verdict = Buffer.byteLength(lines[lines.length - 1], "latin1") > 1024 ? { push: false, ...TOO_LONG } : { push: true, caller, ...bug };
    add(`invite-${header.toLowerCase()}-${name}`, inviteOf(callId, lines), { method: "INVITE", aor: aorOf("sleeper"), callId, ...verdict });
  }
}
// Hostile Call-IDs: the push's call-id must be exactly the Call-ID.
for (const [name, callId] of Object.entries({ quote: 'q"uote@x', json: '"},{"aps":1}@x', script: "</script>@x", backslash: "back\\slash@x", long: "L".repeat(900) + "@x" })) {
  add(`invite-call-id-${name}`, inviteOf(callId, [`From: "Caller" <sip:${aorOf("15551230002")}>;tag=corpus${counter + 1}`]), {
    method: "INVITE",
    aor: aorOf("sleeper"),
    callId,
    push: true,
    caller: { number: "15551230002", name: "Caller" },
  });
}
// Hostile numbers: user parts with quotes, escapes and JSON.
for (const [name, user] of Object.entries({ plus: "+15551230003", escaped: "%2B1555%22x", json: "%22%7D%7B%22a%22%3A1%7D", star: "*67" })) {
  const callId = `corpus-invite-${counter + 1}@hostile`;
  add(`invite-number-${name}`, inviteOf(callId, [`From: <sip:${aorOf(user)}>;tag=corpus${counter + 1}`]), {
    method: "INVITE",
    aor: aorOf("sleeper"),
    callId,
    push: true,
    caller: { number: decodeURIComponent(user), name: "" },
  });
}
// Broken INVITEs Kamailio must answer (400/4xx) without calling anyone.
const brokenInvites = {
  "no-to": [`From: <sip:${aorOf("a")}>;tag=b1`],
  "two-from": [`From: <sip:${aorOf("a")}>;tag=b2`, `From: <sip:${aorOf("b")}>;tag=b3`, `To: <sip:${aorOf("sleeper")}>`],
  "from-no-tag-bad-uri": ["From: <sip:@@@>", `To: <sip:${aorOf("sleeper")}>`],
};
for (const [name, headers] of Object.entries(brokenInvites)) {
  const callId = `corpus-invite-${counter + 1}@hostile`;
  add(`invite-broken-${name}`, request("INVITE", `sip:${aorOf("sleeper")}`, [...headers, CALLER_CONTACT], callId), {
    method: "INVITE",
    aor: aorOf("sleeper"),
    callId,
    push: false,
    ...(name === "from-no-tag-bad-uri" ? {} : { unanswered: UNPARSABLE }),
  });
}

// ---- Added after the INVITEs, so that the files above keep their numbers. ----
// 12. Instance ids key records and are logged: longer than 256 characters or not printable ASCII (decoded from
// %0D%0A, or raw ESC), the binding is refused. A User-Agent no rule matches is logged: raw ESC there.
const FORGED = "%0D%0A 0(999) INFO: <script>: pusher: FORGED-LOG-LINE";
for (const [name, instance] of Object.entries({ "crlf-encoded": `urn:uuid:1${FORGED}`, esc: "urn:uuid:\x1b[31m", long: `urn:${"a".repeat(300)}` })) {
  add(`victim-instance-${name}`, registerOf("victim", [contact("victim", `;+sip.instance="<${instance}>";app-id=${APP_ID};pn-type=apple;pn-tok=${"ab".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
}
add("victim-user-agent-esc", registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"ab".repeat(16)}`)], { userAgent: "Hostile/1.0 \x1b[2J\x1b[31mFORGED-TERMINAL" }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });
add("victim-app-id-forged-log-line", registerOf("victim", [contact("victim", `;app-id=${paramValue(`x${FORGED}`)};pn-type=apple;pn-tok=${"ac".repeat(16)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged" });

// 13. Headers longer than the plugin reads (knobs PUSHER_MAX_CONTACT_BYTES 8192, PUSHER_MAX_HEADER_BYTES 1024): cfg
// answers 400 before any JavaScript runs, so nothing changes, even for valid push params.
add("victim-contact-over-8k", registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"ad".repeat(16)};x-pad=${"p".repeat(8200)}`)]), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", ...TOO_LONG });
add("victim-contacts-over-8k", registerOf("victim", Array.from({ length: 12 }, (_, i) => contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"ae".repeat(16)};x-pad${i}=${"p".repeat(700)}`))), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", ...TOO_LONG });
add("victim-user-agent-over-1k", registerOf("victim", [contact("victim", `;app-id=${APP_ID};pn-type=apple;pn-tok=${"af".repeat(16)}`)], { userAgent: `${UA} ${"u".repeat(1100)}` }), { method: "REGISTER", aor: aorOf("victim"), expect: "unchanged", ...TOO_LONG });

// A 54 KB P-Asserted-Identity (one datagram: Kamailio's TCP read buffer takes less) of bytes that are not UTF-8
// (each a U+FFFD to decode) and many ;params: once seconds of Duktape in a SIP worker, now a 400 before the plugin.
{
  const callId = `corpus-invite-${counter + 1}@hostile`;
  const pai = `P-Asserted-Identity: "${"\xff\xfe".repeat(13000)}" <sip:${aorOf("15551230004")}>${";x=1".repeat(7000)}`;
  add("invite-p-asserted-identity-54k-non-utf8", inviteOf(callId, [`From: "Caller" <sip:${aorOf("15551230004")}>;tag=corpus${counter + 1}`, pai]), { method: "INVITE", aor: aorOf("sleeper"), callId, push: false, ...TOO_LONG });
}

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
for (const [file, raw] of files) writeFileSync(join(OUT, file), Buffer.from(raw, "latin1"));
writeFileSync(join(HERE, "manifest.json"), JSON.stringify({ domain: DOMAIN, victimToken: GOOD_TOKEN, appId: APP_ID, entries }, null, 1) + "\n");
console.log(`${entries.length} messages (${entries.filter((e) => e.method === "REGISTER").length} REGISTER, ${entries.filter((e) => e.method === "INVITE").length} INVITE) in ${OUT}`);
