// APNs client certificates from the test CA for any bundle id and validity window, as one PEM (certificate +
// key) like `pusher apps add-apple` takes. `openssl ca` because OpenSSL 3.0's `x509 -req` cannot date a
// certificate in the past (-not_before/-not_after arrived in 3.4) and `openssl ca` takes -startdate/-enddate.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** `YYYYMMDDHHMMSSZ` (GeneralizedTime) for openssl ca. */
function opensslDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

export interface AppCertificateOptions {
  caDir: string;
  bundleId: string;
  notBefore?: Date;
  notAfter?: Date;
}

/** Writes `<dir>/<name>.pem` (certificate then unencrypted key) and returns its path. */
export function makeAppCertificate(dir: string, name: string, options: AppCertificateOptions): string {
  const work = mkdtempSync(join(dir, "ca-"));
  try {
    writeFileSync(join(work, "index.txt"), "");
    writeFileSync(join(work, "serial"), Date.now().toString(16).padStart(16, "0") + "\n");
    writeFileSync(
      join(work, "ca.cnf"),
      [
        "[ca]",
        "default_ca = test",
        "[test]",
        `dir = ${work}`,
        "database = $dir/index.txt",
        "serial = $dir/serial",
        "new_certs_dir = $dir",
        `certificate = ${join(options.caDir, "ca.pem")}`,
        `private_key = ${join(options.caDir, "ca.key")}`,
        "default_md = sha256",
        "policy = anything",
        "unique_subject = no",
        "x509_extensions = client",
        "[anything]",
        "UID = optional",
        "commonName = supplied",
        "organizationName = optional",
        "[client]",
        "basicConstraints = CA:FALSE",
        "keyUsage = critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage = clientAuth",
        "",
      ].join("\n"),
    );
    const subject = `/UID=${options.bundleId}/CN=Apple VoIP Services: ${options.bundleId}/O=Pusher Tests`;
    execFileSync(
      "openssl",
      [
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        join(work, "key.pem"),
        "-subj",
        subject,
        "-out",
        join(work, "req.csr"),
      ],
      { stdio: "pipe" },
    );
    const notBefore = options.notBefore ?? new Date(Date.now() - 86_400_000);
    const notAfter = options.notAfter ?? new Date(Date.now() + 365 * 86_400_000);
    execFileSync(
      "openssl",
      [
        "ca",
        "-batch",
        "-config",
        join(work, "ca.cnf"),
        "-in",
        join(work, "req.csr"),
        "-out",
        join(work, "cert.pem"),
        "-notext",
        "-startdate",
        opensslDate(notBefore),
        "-enddate",
        opensslDate(notAfter),
      ],
      { stdio: "pipe" },
    );
    const file = join(dir, `${name}.pem`);
    writeFileSync(file, readFileSync(join(work, "cert.pem"), "utf8") + readFileSync(join(work, "key.pem"), "utf8"), {
      mode: 0o600,
    });
    return file;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
