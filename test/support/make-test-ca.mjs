// Creates the TLS material the helper tests need, with the openssl CLI (Node can read X.509 but not mint it):
//   ca.pem, ca.key          a throw-away test CA (tests trust it through NODE_EXTRA_CA_CERTS)
//   server.pem, server.key  the mock APNs server: CN localhost, SAN DNS:localhost + IP:127.0.0.1
//   apple-app.pem           an APNs-style client certificate and its unencrypted key in ONE file,
//                           like the PEM an operator exports from Apple's .p12 (Kazoo's add_apple_app)
// Idempotent: does nothing when every file is already there.
// Usage: node test/support/make-test-ca.mjs <dir>     or     import { makeTestCa } from "./make-test-ca.mjs"
import { execFile } from "node:child_process";
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

export const TEST_APP_BUNDLE_ID = "com.app.mymobileapp";
// Apple's VoIP certificates carry the bundle id as UID and in the CN; the mock derives the allowed topics from it.
const CLIENT_SUBJECT = `/UID=${TEST_APP_BUNDLE_ID}/CN=Apple VoIP Services: ${TEST_APP_BUNDLE_ID}/OU=TESTTEAM01/O=Pusher Tests/C=US`;
const FILES = ["ca.pem", "ca.key", "server.pem", "server.key", "apple-app.pem"];
const LEAF_DAYS = "825";
const CA_DAYS = "3650";

async function exists(path) {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function openssl(args) {
  return run("openssl", args);
}

function randomSerial() {
  return (
    "0x" + [...crypto.getRandomValues(new Uint8Array(12))].map((byte) => byte.toString(16).padStart(2, "0")).join("")
  );
}

/** Signs `<name>.csr` with the CA into `<name>.pem`, with the given v3 extensions. */
async function signLeaf(dir, name, extensions) {
  const extensionsFile = join(dir, `${name}.ext`);
  await writeFile(extensionsFile, extensions.join("\n") + "\n");
  await openssl([
    "x509",
    "-req",
    "-in",
    join(dir, `${name}.csr`),
    "-CA",
    join(dir, "ca.pem"),
    "-CAkey",
    join(dir, "ca.key"),
    "-set_serial",
    randomSerial(),
    "-days",
    LEAF_DAYS,
    "-sha256",
    "-extfile",
    extensionsFile,
    "-out",
    join(dir, `${name}.pem`),
  ]);
  await rm(extensionsFile);
  await rm(join(dir, `${name}.csr`));
}

async function newKeyAndRequest(dir, name, subject) {
  await openssl([
    "req",
    "-new",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    join(dir, `${name}.key`),
    "-subj",
    subject,
    "-out",
    join(dir, `${name}.csr`),
  ]);
}

/** Creates the test CA, server and APNs client material in `dir` unless all of it exists. Returns the paths. */
export async function makeTestCa(dir) {
  const root = resolve(dir);
  const paths = {
    ca: join(root, "ca.pem"),
    caKey: join(root, "ca.key"),
    serverCertificate: join(root, "server.pem"),
    serverKey: join(root, "server.key"),
    appleApp: join(root, "apple-app.pem"),
  };
  const present = await Promise.all(FILES.map((file) => exists(join(root, file))));
  if (present.every(Boolean)) return paths;

  await mkdir(root, { recursive: true });
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    paths.caKey,
    "-out",
    paths.ca,
    "-days",
    CA_DAYS,
    "-sha256",
    "-subj",
    "/CN=kamailio-pusher test CA/O=Pusher Tests",
  ]);

  await newKeyAndRequest(root, "server", "/CN=localhost/O=Pusher Tests");
  await signLeaf(root, "server", [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);

  await newKeyAndRequest(root, "apple-app-certificate", CLIENT_SUBJECT);
  await signLeaf(root, "apple-app-certificate", [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=clientAuth",
  ]);
  // One PEM holding certificate then key, as the helper's `certificateFile` expects.
  const certificate = await readFile(join(root, "apple-app-certificate.pem"), "utf8");
  const key = await readFile(join(root, "apple-app-certificate.key"), "utf8");
  await writeFile(paths.appleApp, certificate + key, { mode: 0o600 });
  await rm(join(root, "apple-app-certificate.pem"));
  await rm(join(root, "apple-app-certificate.key"));
  return paths;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node test/support/make-test-ca.mjs <dir>");
    process.exitCode = 2;
  } else {
    const paths = await makeTestCa(dir);
    console.log(`test CA ready in ${resolve(dir)} (trust it with NODE_EXTRA_CA_CERTS=${paths.ca})`);
  }
}
