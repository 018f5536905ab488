/**
 * A self-signed server certificate for TLS tests, made with `openssl` (P-256,
 * valid one day) for the names given: the tests' TLS servers present it and
 * their clients skip verification, since what is tested is the server name a
 * client asks for, not trust.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCertificate {
  keyPath: string;
  certPath: string;
  key: Buffer;
  cert: Buffer;
}

/** Makes a key and a certificate for `names` (DNS subject alternative names) in `dir` (a new temporary folder by default). */
export function makeCertificate(names: string[], dir = mkdtempSync(join(tmpdir(), "palisade-tls-"))): TestCertificate {
  const keyPath = join(dir, "server.key");
  const certPath = join(dir, "server.crt");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
    "-subj", `/CN=${names[0] ?? "localhost"}`, "-addext", `subjectAltName=${names.map((name) => `DNS:${name}`).join(",")}`,
    "-keyout", keyPath, "-out", certPath,
  ], { stdio: "ignore" });
  return { keyPath, certPath, key: readFileSync(keyPath), cert: readFileSync(certPath) };
}
