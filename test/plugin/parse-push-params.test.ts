import { describe, expect, it } from "vitest";
import { parseContacts } from "../../src/plugin/parse-contact";
import { deviceInstance, parsePushParams, readPushParams } from "../../src/plugin/parse-push-params";

const KAZOO_SEED_CONTACT =
  '<sip:user_1234567@192.168.1.1:61767;transport=TCP;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-0000-0000-00004e05965e>";app-id=com.app.mymobileapp;pn-tok=34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw;pn-type=apple';
const KAZOO_DOC_CONTACT = "<sip:user@192.168.1.1>;reg-id=1;app-id=org.myorg.myapp;pn-tok=tok;pn-type=apple";

function only(header: string) {
  const contacts = parseContacts(header);
  expect(contacts).toHaveLength(1);
  return contacts[0];
}

function bindingOf(header: string) {
  return parsePushParams(only(header));
}

describe("parsePushParams", () => {
  it("reads Kazoo's sample Contact, token with its inner space, instance without quotes or brackets", () => {
    expect(bindingOf(KAZOO_SEED_CONTACT)).toEqual({
      appId: "com.app.mymobileapp",
      provider: "apple",
      token: "34fretrwgtrvtrebyenbytrwvtrebytenytbyrtebytebytebyten yhtevtrw",
      instance: "urn:uuid:00000000-0000-0000-0000-00004e05965e",
    });
  });

  it("reads the short form from Kazoo's documentation, keyed by its reg-id", () => {
    expect(bindingOf(KAZOO_DOC_CONTACT)).toEqual({
      appId: "org.myorg.myapp",
      provider: "apple",
      token: "tok",
      instance: "reg-id:1",
    });
  });

  it("reads push params placed inside the URI", () => {
    expect(bindingOf("<sip:a@h;app-id=com.x;pn-tok=t1;pn-type=firebase>")).toEqual({
      appId: "com.x",
      provider: "firebase",
      token: "t1",
      instance: "sip:a@h;app-id=com.x;pn-tok=t1;pn-type=firebase",
    });
  });

  it("reads each param from the URI or the header params, wherever the phone put it", () => {
    const binding = bindingOf("<sip:a@h;pn-tok=uri-token>;app-id=header-app;pn-type=apple");
    expect(binding).toMatchObject({ token: "uri-token", appId: "header-app", provider: "apple" });
  });

  it("refuses a push param whose URI and header forms disagree (which one the phone meant is unknowable)", () => {
    expect(bindingOf("<sip:a@h;pn-tok=uri-token>;pn-tok=header-token;app-id=header-app;pn-type=apple")).toBeNull();
    expect(bindingOf("<sip:a@h;pn-type=google>;pn-type=apple;app-id=x;pn-tok=t")).toBeNull();
    expect(bindingOf("<sip:a@h;pn-type=apple>;pn-type=apple;app-id=x;pn-tok=t")?.provider).toBe("apple");
  });

  it("URL-decodes the token and the app id", () => {
    expect(bindingOf("<sip:a@h;pn-tok=abc%3AAPA91b%2Bx;app-id=com%2Eexample>;pn-type=firebase")).toMatchObject({
      token: "abc:APA91b+x",
      appId: "com.example",
    });
  });

  it("keeps a token with a malformed escape as sent", () => {
    expect(bindingOf("<sip:a@h>;app-id=x;pn-tok=ab%zz;pn-type=apple")?.token).toBe("ab%zz");
  });

  it.each([
    ["apple", "apple"],
    ["firebase", "firebase"],
    ["google", "firebase"],
    ["android", "firebase"],
    ["APPLE", "apple"],
    ["Apple", "apple"],
    ["FireBase", "firebase"],
    ["Google", "firebase"],
    ["ANDROID", "firebase"],
  ])("maps pn-type=%s to the %s provider", (pnType, provider) => {
    expect(bindingOf(`<sip:a@h>;app-id=x;pn-tok=t;pn-type=${pnType}`)?.provider).toBe(provider);
  });

  it.each([
    "apns",
    "fcm",
    "huawei",
    "webpush",
    "constructor",
    "__proto__",
    "hasOwnProperty",
    "toString",
    "valueOf",
    "apple2",
    "ios",
  ])("refuses the unknown pn-type %j", (pnType) => {
    expect(bindingOf(`<sip:a@h;pn-type=${pnType}>;app-id=x;pn-tok=t`)).toBeNull();
  });

  it.each([
    ["app-id is missing", "<sip:a@h>;pn-tok=t;pn-type=apple"],
    ["pn-tok is missing", "<sip:a@h>;app-id=x;pn-type=apple"],
    ["pn-type is missing", "<sip:a@h>;app-id=x;pn-tok=t"],
    ["pn-type is empty", "<sip:a@h>;app-id=x;pn-tok=t;pn-type="],
    ["the contact has no params at all", "<sip:a@h>"],
  ])("returns null when %s", (_label, header) => {
    expect(bindingOf(header)).toBeNull();
  });

  it("reads every contact of a multi-contact REGISTER on its own", () => {
    const bindings = parseContacts(
      '<sip:a@h>;+sip.instance="<urn:uuid:a>";app-id=x;pn-tok=ta;pn-type=apple, <sip:b@h>;reg-id=2, <sip:c@h>;app-id=y;pn-tok=tc;pn-type=android',
    ).map((contact) => parsePushParams(contact));
    expect(bindings).toEqual([
      { appId: "x", provider: "apple", token: "ta", instance: "urn:uuid:a" },
      null,
      { appId: "y", provider: "firebase", token: "tc", instance: "sip:c@h" },
    ]);
  });
});

describe("deviceInstance", () => {
  it.each([
    [
      "+sip.instance, quotes and brackets stripped",
      '<sip:a@h>;reg-id=1;+sip.instance="<urn:uuid:abc>"',
      "urn:uuid:abc",
    ],
    ["+sip.instance without quotes", "<sip:a@h>;+sip.instance=<urn:uuid:abc>", "urn:uuid:abc"],
    ["+sip.instance without brackets", '<sip:a@h>;+sip.instance="urn:uuid:abc"', "urn:uuid:abc"],
    ["+sip.instance in any case", '<sip:a@h>;+SIP.Instance="<urn:uuid:abc>"', "urn:uuid:abc"],
    ["reg-id when there is no +sip.instance", "<sip:a@h>;reg-id=7", "reg-id:7"],
    ["reg-id when +sip.instance is empty", '<sip:a@h>;+sip.instance="";reg-id=7', "reg-id:7"],
    ["the contact URI when there is neither", "<sip:a@h:5061;transport=tls>;expires=60", "sip:a@h:5061;transport=tls"],
    ["the contact URI when reg-id is empty", "<sip:a@h>;reg-id=", "sip:a@h"],
  ])("is %s", (_label, header, instance) => {
    expect(deviceInstance(only(header))).toBe(instance);
  });

  it("ignores +sip.instance and reg-id inside the URI", () => {
    expect(deviceInstance(only("<sip:a@h;reg-id=1;+sip.instance=x>"))).toBe("sip:a@h;reg-id=1;+sip.instance=x");
  });
});

// Real-world Contact headers of each dialect (Linphone iOS/Android 5.x, Kazoo's seed, RFC 8599 examples) and
// malformed ones: what readPushParams makes of each.
describe("readPushParams, dialect by dialect", () => {
  const LINPHONE_IOS =
    "<sip:alice@192.0.2.10:50638;transport=tls;pn-prid=3F0A7E8D2C4B6A1908F7E6D5C4B3A29181706F5E4D3C2B1A0918273645546372:remote%26" +
    "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90:voip;pn-provider=apns;pn-param=ABCD1234.org.linphone.phone.remote%26voip;" +
    "pn-msg-str=IM_MSG;pn-call-str=IC_MSG;pn-groupchat-str=GC_MSG;pn-call-snd=notes_of_the_optimistic.caf;pn-msg-snd=msg.caf;pn-silent=1;pn-timeout=0>;" +
    '+sip.instance="<urn:uuid:3a4c6e20-7b3f-4d6e-9f5a-1c2b3d4e5f60>"';
  const LINPHONE_ANDROID =
    "<sip:bob@198.51.100.7:41528;transport=tcp;pn-prid=dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx;pn-provider=fcm;pn-param=linphone-android-8a7c6>;" +
    '+sip.instance="<urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0>"';

  it.each([
    [
      "Linphone iOS, RFC 8599 with two tokens: calls to the VoIP one, the alert one kept",
      LINPHONE_IOS,
      {
        kind: "binding",
        binding: {
          appId: "org.linphone.phone",
          provider: "apple",
          token: "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90",
          alertToken: "3F0A7E8D2C4B6A1908F7E6D5C4B3A29181706F5E4D3C2B1A0918273645546372",
          pushKind: "voip",
          apnsTopic: "org.linphone.phone",
          pns: "apns",
          instance: "urn:uuid:3a4c6e20-7b3f-4d6e-9f5a-1c2b3d4e5f60",
          options: {
            "pn-msg-str": "IM_MSG",
            "pn-call-str": "IC_MSG",
            "pn-call-snd": "notes_of_the_optimistic.caf",
            "pn-silent": "1",
            "pn-timeout": "0",
          },
        },
      },
    ],
    [
      "Linphone Android, RFC 8599 fcm: the project id from pn-param",
      LINPHONE_ANDROID,
      {
        kind: "binding",
        binding: {
          appId: "linphone-android-8a7c6",
          provider: "firebase",
          token: "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx",
          fcmProjectId: "linphone-android-8a7c6",
          pns: "fcm",
          instance: "urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        },
      },
    ],
    [
      "RFC 8599 apns with .voip: a VoIP token, topic without team id and service",
      "<sip:c@h;pn-provider=apns;pn-prid=00fc13adff78512;pn-param=DEF123GHIJ.com.example.yourapp.voip>",
      {
        kind: "binding",
        binding: {
          appId: "com.example.yourapp",
          provider: "apple",
          token: "00fc13adff78512",
          pushKind: "voip",
          apnsTopic: "com.example.yourapp",
          pns: "apns",
          instance: "sip:c@h;pn-provider=apns;pn-prid=00fc13adff78512;pn-param=DEF123GHIJ.com.example.yourapp.voip",
        },
      },
    ],
    [
      "RFC 8599 apns without a service: an alert token",
      "<sip:c@h>;pn-provider=apns;pn-prid=00fc13;pn-param=DEF123GHIJ.com.example.yourapp;reg-id=1",
      {
        kind: "binding",
        binding: {
          appId: "com.example.yourapp",
          provider: "apple",
          token: "00fc13",
          pushKind: "alert",
          apnsTopic: "com.example.yourapp",
          pns: "apns",
          instance: "reg-id:1",
        },
      },
    ],
    [
      "Linphone apns.dev, remote only: a sandbox alert token",
      "<sip:c@h>;pn-provider=apns.dev;pn-prid=ab12:remote;pn-param=ABCD1234.org.linphone.phone.remote;reg-id=1",
      {
        kind: "binding",
        binding: {
          appId: "org.linphone.phone",
          provider: "apple",
          token: "ab12",
          pushKind: "alert",
          apnsTopic: "org.linphone.phone",
          sandbox: true,
          pns: "apns.dev",
          instance: "reg-id:1",
        },
      },
    ],
    [
      "RFC 8599 webpush: the subscription URL is the token, the app from app-id",
      "<sip:c@h;pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example.net%2Fpush%2FJzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV>;app-id=web.example;reg-id=1",
      {
        kind: "binding",
        binding: {
          appId: "web.example",
          provider: "webpush",
          token: "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV",
          pns: "webpush",
          instance: "reg-id:1",
        },
      },
    ],
    [
      "Linphone legacy: pn-type/pn-tok/app-id with the payload params",
      "<sip:d@h>;app-id=org.linphone.phone;pn-type=firebase;pn-tok=fcmtok:APA91;pn-msg-str=IM_MSG;pn-call-snd=ring.wav;reg-id=1",
      {
        kind: "binding",
        binding: {
          appId: "org.linphone.phone",
          provider: "firebase",
          token: "fcmtok:APA91",
          instance: "reg-id:1",
          options: { "pn-msg-str": "IM_MSG", "pn-call-snd": "ring.wav" },
        },
      },
    ],
    ["a query: pn-provider without pn-prid", "<sip:e@h;pn-provider=apns>", { kind: "query", pns: "apns" }],
    ["a query for any provider: empty pn-provider", "<sip:e@h>;pn-provider", { kind: "query", pns: "" }],
    [
      "an unknown provider is unsupported, not malformed",
      "<sip:e@h;pn-provider=huawei;pn-prid=x;pn-param=y>",
      { kind: "unsupported", pns: "huawei" },
    ],
    ["no push params at all", "<sip:e@h>;expires=600", { kind: "none" }],
  ])("%s", (_label, header, reading) => {
    expect(readPushParams(only(header))).toEqual(reading);
  });

  it.each([
    ["apns without pn-param", "<sip:e@h;pn-provider=apns;pn-prid=00ff>"],
    ["apns with a pn-param that is not TeamID.BundleID", "<sip:e@h;pn-provider=apns;pn-prid=00ff;pn-param=voip>"],
    [
      "a two-token pn-prid with an unknown service",
      "<sip:e@h;pn-provider=apns;pn-prid=aa:remote%26bb:video;pn-param=T.b.c>",
    ],
    [
      "a two-token pn-prid naming a service twice",
      "<sip:e@h;pn-provider=apns;pn-prid=aa:voip%26bb:voip;pn-param=T.b.c>",
    ],
    ["fcm without a project id or app-id", "<sip:e@h;pn-provider=fcm;pn-prid=tok>"],
    ["a legacy token without pn-type", "<sip:e@h>;app-id=x;pn-tok=t"],
    ["a legacy token without app-id", "<sip:e@h>;pn-tok=t;pn-type=apple"],
  ])("refuses %s", (_label, header) => {
    expect(readPushParams(only(header)).kind).toBe("refused");
  });

  it("reads a legacy binding from the param names a User-Agent rule gives", () => {
    const contact = only(
      "<sip:f@h>;x-app=com.x;x-kind=google;x-token=tok1;app-id=ignored;pn-tok=ignored;pn-type=apple",
    );
    expect(parsePushParams(contact, { appId: "x-app", type: "x-kind", token: "x-token" })).toEqual({
      appId: "com.x",
      provider: "firebase",
      token: "tok1",
      instance: "sip:f@h",
    });
  });

  it("splits a legacy Apple pn-tok in the two-token form too", () => {
    expect(parsePushParams(only("<sip:g@h>;app-id=a.b;pn-type=apple;pn-tok=aa:remote%26bb:voip"))).toMatchObject({
      token: "bb",
      alertToken: "aa",
      pushKind: "voip",
    });
  });
});

describe("conflicting push params", () => {
  it.each([
    ["<sip:a@h>;app-id=x;pn-tok=one;pn-tok=two;pn-type=apple", "pn-tok"],
    ["<sip:a@h;pn-type=apple>;app-id=x;pn-tok=t;pn-type=firebase", "pn-type"],
    ["<sip:a@h>;pn-provider=apns;pn-provider=fcm;pn-prid=t;pn-param=T.b", "pn-provider"],
  ])("refuses %s, naming %s", (header, name) => {
    const reading = readPushParams(parseContacts(header)[0]);
    expect(reading.kind).toBe("refused");
    expect((reading as { problem: string }).problem).toContain(name);
  });
});
