/**
 * A self-signed server certificate for TLS tests, made with `openssl` (P-256,
 * valid one day) for the names given: the tests' TLS servers present it and
 * their clients skip verification, since what is tested is the server name a
 * client asks for, not trust.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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

/** A test CA: its key and certificate, and the folder it issues into. */
export interface TestCa {
  dir: string;
  cert: Buffer;
  certPath: string;
  keyPath: string;
}

const CA_CONFIG = `[ca]
default_ca = test
[test]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
[leaf]
basicConstraints = CA:FALSE
subjectAltName = $ENV::SAN
[server_leaf]
basicConstraints = CA:FALSE
subjectAltName = $ENV::SAN
extendedKeyUsage = serverAuth
`;

/** Makes a CA (P-256, valid two days) named `name`, in a new temporary folder. */
export function makeCa(name: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "palisade-ca-"));
  const keyPath = join(dir, "ca.key");
  const certPath = join(dir, "ca.crt");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", keyPath, "-out", certPath], { stdio: "ignore" });
  writeFileSync(join(dir, "index.txt"), "");
  writeFileSync(join(dir, "ca.cnf"), CA_CONFIG);
  return { dir, cert: readFileSync(certPath), certPath, keyPath };
}

/** What an intermediate CA carries beyond `CA:TRUE`: a path length limit, and other extension lines (`nameConstraints = …`). */
export interface IntermediateOptions {
  pathLen?: number;
  extensions?: string[];
}

/** Issues an intermediate CA named `name`, signed by `parent` (valid a day), in a new temporary folder, ready to issue. */
export function issueIntermediateCa(parent: TestCa, name: string, options: IntermediateOptions = {}): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "palisade-ca-"));
  const keyPath = join(dir, "ca.key");
  const certPath = join(dir, "ca.crt");
  execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${name}`, "-keyout", keyPath, "-out", join(dir, "ca.csr")], { stdio: "ignore" });
  const basic = `basicConstraints = critical,CA:TRUE${options.pathLen === undefined ? "" : `,pathlen:${options.pathLen}`}`;
  writeFileSync(join(dir, "ca.ext"), ["[intermediate]", basic, "keyUsage = critical,keyCertSign,cRLSign", ...(options.extensions ?? [])].join("\n") + "\n");
  execFileSync("openssl", ["ca", "-batch", "-config", "ca.cnf", "-cert", parent.certPath, "-keyfile", parent.keyPath, "-in", join(dir, "ca.csr"), "-out", certPath, "-extfile", join(dir, "ca.ext"), "-extensions", "intermediate", "-notext", "-create_serial", "-days", "1"], {
    cwd: parent.dir,
    stdio: "ignore",
    // The configuration's leaf sections read SAN; this certificate takes none of them.
    env: { ...process.env, SAN: "DNS:unused" },
  });
  writeFileSync(join(dir, "index.txt"), "");
  writeFileSync(join(dir, "ca.cnf"), CA_CONFIG);
  return { dir, cert: readFileSync(certPath), certPath, keyPath };
}

/** What a leaf certificate holds: its names (`DNS:x`, `URI:y`), and its validity (by default from now for a day). */
export interface LeafOptions {
  names: string[];
  /** `openssl ca` dates, `YYYYMMDDHHMMSSZ`. */
  startDate?: string;
  endDate?: string;
  /** Extended key usage serverAuth only (by default the certificate has no extended key usage). */
  serverAuthOnly?: boolean;
}

let issued = 0;

/** Issues a key and certificate signed by `ca`. */
export function issueCertificate(ca: TestCa, options: LeafOptions): TestCertificate {
  const base = join(ca.dir, `leaf-${++issued}`);
  const keyPath = `${base}.key`;
  const certPath = `${base}.crt`;
  execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=leaf-${issued}`, "-keyout", keyPath, "-out", `${base}.csr`], { stdio: "ignore" });
  const dates = options.startDate !== undefined && options.endDate !== undefined ? ["-startdate", options.startDate, "-enddate", options.endDate] : ["-days", "1"];
  execFileSync("openssl", ["ca", "-batch", "-config", "ca.cnf", "-cert", ca.certPath, "-keyfile", ca.keyPath, "-in", `${base}.csr`, "-out", certPath, "-extensions", options.serverAuthOnly ? "server_leaf" : "leaf", "-notext", "-create_serial", ...dates], {
    cwd: ca.dir,
    stdio: "ignore",
    env: { ...process.env, SAN: options.names.join(",") },
  });
  return { keyPath, certPath, key: readFileSync(keyPath), cert: readFileSync(certPath) };
}
