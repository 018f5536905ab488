/**
 * The dev cluster's certificates: one CA that signs every serving and client
 * certificate (ECDSA P-256, made with the openssl CLI since Node cannot sign
 * certificates), and the service-account signing key pair. Every call reuses
 * what already exists and is still right (signed by this CA, same subject
 * and names, more than a day left), so `dev up` can run any number of times.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { DevClusterError } from "./errors.ts";

/** A certificate and its private key, as PEM files. */
export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

/** A client certificate: Kubernetes takes the user from CN and the groups from O. */
export interface ClientCredentials extends CertificateFiles {
  user: string;
  groups: string[];
}

/** The names a serving certificate is valid for. */
export interface ServingNames {
  dnsNames: string[];
  ips: string[];
  /** Also usable as a client certificate (etcd dials its own gRPC gateway with it). */
  clientAuth?: boolean;
}

const CA_DAYS = 3650;
const LEAF_DAYS = 365;
const RENEW_BEFORE_MS = 24 * 60 * 60 * 1000;
const SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH_OID = "1.3.6.1.5.5.7.3.2";

const CA_EXTENSIONS = [
  "basicConstraints = critical,CA:TRUE",
  "keyUsage = critical,keyCertSign,cRLSign,digitalSignature",
  "subjectKeyIdentifier = hash",
];

function leafExtensions(usage: "serverAuth" | "clientAuth" | "serverAuth,clientAuth", names?: ServingNames): string[] {
  const lines = [
    "basicConstraints = critical,CA:FALSE",
    "keyUsage = critical,digitalSignature,keyEncipherment",
    `extendedKeyUsage = ${usage}`,
    "subjectKeyIdentifier = hash",
    "authorityKeyIdentifier = keyid",
  ];
  if (names) {
    const sans = [...names.dnsNames.map((name) => `DNS:${name}`), ...names.ips.map((ip) => `IP:${ip}`)];
    lines.push(`subjectAltName = ${sans.join(",")}`);
  }
  return lines;
}

/** openssl's `-subj` syntax, with its separators escaped inside values. */
function subjectArgument(commonName: string, organizations: string[]): string {
  const escape = (value: string): string => value.replace(/[\\/+]/g, (c) => `\\${c}`);
  return [`/CN=${escape(commonName)}`, ...organizations.map((o) => `/O=${escape(o)}`)].join("");
}

/** A file name for a user name: readable, and distinct for distinct users. */
function fileNameFor(user: string): string {
  const readable = user.replace(/[^A-Za-z0-9._-]/g, "-");
  if (readable === user) return user;
  return `${readable}-${createHash("sha256").update(user).digest("hex").slice(0, 8)}`;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function subjectOf(cert: X509Certificate): { cn: string; o: string[] } {
  const subject = cert.toLegacyObject().subject as Record<string, string | string[] | undefined>;
  const cn = subject.CN;
  const o = subject.O;
  return { cn: typeof cn === "string" ? cn : "", o: o === undefined ? [] : Array.isArray(o) ? o : [o] };
}

/**
 * The certificate authority of one dev folder and everything it signs.
 *
 * @example
 * ```ts
 * const pki = DevPki.ensure("/var/lib/palisade/dev/pki");
 * const agent = pki.issueClientCert("palisade:agent:node-1", ["palisade:agents"]);
 * ```
 */
export class DevPki {
  /** The folder holding every file. */
  readonly dir: string;
  /** The CA certificate: what servers and clients trust. */
  readonly caCertFile: string;
  /** The CA key (kube-controller-manager signs CSRs with it). */
  readonly caKeyFile: string;
  /** Signs service-account tokens (PKCS#8 RSA). */
  readonly serviceAccountKeyFile: string;
  /** Verifies service-account tokens. */
  readonly serviceAccountPublicKeyFile: string;
  /** Undefined for a PKI opened read-only. */
  readonly #ca: X509Certificate | undefined;

  private constructor(dir: string, writable: boolean) {
    this.dir = dir;
    this.caCertFile = join(dir, "ca.crt");
    this.caKeyFile = join(dir, "ca.key");
    this.serviceAccountKeyFile = join(dir, "service-account.key");
    this.serviceAccountPublicKeyFile = join(dir, "service-account.pub");
    if (writable) {
      this.#ca = this.#ensureCa();
      this.#ensureServiceAccountKeys();
    }
  }

  /**
   * The PKI in `dir`: creates the folder, the CA and the service-account key
   * pair if missing, else reuses them.
   */
  static ensure(dir: string): DevPki {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new DevPki(dir, true);
  }

  /**
   * The PKI in `dir` as it is, read-only: the issue methods only name the
   * files a writable PKI would have issued (for status checks, which must
   * change nothing).
   */
  static existing(dir: string): DevPki {
    return new DevPki(dir, false);
  }

  /** PEM text of the CA certificate (for kubeconfigs and TLS clients). */
  caPem(): string {
    return readFileSync(this.caCertFile, "utf8");
  }

  /**
   * A serving certificate for `names`, valid for TLS clients that trust the CA.
   * `name` names the files (`<name>.crt`, `<name>.key`).
   *
   * @example
   * ```ts
   * pki.issueServingCert("etcd-server", { dnsNames: ["localhost"], ips: ["127.0.0.1"] });
   * ```
   */
  issueServingCert(name: string, names: ServingNames): CertificateFiles {
    for (const ip of names.ips) {
      if (isIP(ip) === 0) throw new DevClusterError(`Cannot issue serving certificate "${name}": "${ip}" is not an IP address`);
    }
    const files = { certFile: join(this.dir, `${name}.crt`), keyFile: join(this.dir, `${name}.key`) };
    const usages = names.clientAuth ? [SERVER_AUTH_OID, CLIENT_AUTH_OID] : [SERVER_AUTH_OID];
    const stillRight = (cert: X509Certificate): boolean =>
      subjectOf(cert).cn === name &&
      sameList(cert.keyUsage ?? [], usages) &&
      names.dnsNames.every((dns) => cert.checkHost(dns, { wildcards: false }) === dns) &&
      names.ips.every((ip) => cert.checkIP(ip) !== undefined);
    if (this.#ca && !this.#reusable(this.#ca, files, stillRight)) {
      this.#sign(files, name, [], leafExtensions(names.clientAuth ? "serverAuth,clientAuth" : "serverAuth", names));
    }
    return files;
  }

  /**
   * A client certificate for Kubernetes user `user` in `groups` (files under
   * `users/`). Reissued when the groups differ from the existing one's.
   *
   * @example
   * ```ts
   * const admin = pki.issueClientCert("palisade-admin", ["system:masters"]);
   * ```
   */
  issueClientCert(user: string, groups: string[] = []): ClientCredentials {
    for (const value of [user, ...groups]) {
      if (value === "" || /[\p{Cc}]/u.test(value)) {
        throw new DevClusterError(`Cannot issue client certificate for user "${user}": "${value}" is not a valid user or group name`);
      }
    }
    const users = join(this.dir, "users");
    const base = fileNameFor(user);
    const files = { certFile: join(users, `${base}.crt`), keyFile: join(users, `${base}.key`) };
    if (!this.#ca) return { ...files, user, groups: [...groups] };
    mkdirSync(users, { recursive: true, mode: 0o700 });
    const stillRight = (cert: X509Certificate): boolean => {
      const subject = subjectOf(cert);
      return subject.cn === user && sameList(subject.o, groups);
    };
    if (!this.#reusable(this.#ca, files, stillRight)) this.#sign(files, user, groups, leafExtensions("clientAuth"));
    return { ...files, user, groups: [...groups] };
  }

  #ensureCa(): X509Certificate {
    const files = { certFile: this.caCertFile, keyFile: this.caKeyFile };
    const existing = this.#read(files);
    if (existing && existing.ca && existing.validToDate.getTime() - Date.now() > RENEW_BEFORE_MS) return existing;
    // Everything signed by a previous CA is useless now.
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.#openssl(files, ["-subj", "/CN=palisade-dev-ca", "-days", String(CA_DAYS)], CA_EXTENSIONS);
    const created = this.#read(files);
    if (!created) throw new DevClusterError(`Cannot create the dev CA in "${this.dir}": openssl wrote no certificate`);
    return created;
  }

  #ensureServiceAccountKeys(): void {
    if (existsSync(this.serviceAccountKeyFile) && existsSync(this.serviceAccountPublicKeyFile)) return;
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    writeFileSync(this.serviceAccountKeyFile, privateKey, { mode: 0o600 });
    writeFileSync(this.serviceAccountPublicKeyFile, publicKey, { mode: 0o644 });
  }

  #read(files: CertificateFiles): X509Certificate | undefined {
    if (!existsSync(files.certFile) || !existsSync(files.keyFile)) return undefined;
    try {
      return new X509Certificate(readFileSync(files.certFile));
    } catch {
      // A torn or foreign file: issue a new one.
      return undefined;
    }
  }

  #reusable(ca: X509Certificate, files: CertificateFiles, stillRight: (cert: X509Certificate) => boolean): boolean {
    const cert = this.#read(files);
    return (
      cert !== undefined &&
      cert.checkIssued(ca) &&
      cert.verify(ca.publicKey) &&
      cert.validToDate.getTime() - Date.now() > RENEW_BEFORE_MS &&
      stillRight(cert)
    );
  }

  #sign(files: CertificateFiles, commonName: string, organizations: string[], extensions: string[]): void {
    this.#openssl(
      files,
      ["-subj", subjectArgument(commonName, organizations), "-days", String(LEAF_DAYS), "-CA", this.caCertFile, "-CAkey", this.caKeyFile],
      extensions,
    );
  }

  /** One `openssl req -x509` run with a config of our own, so the system's openssl.cnf adds nothing. */
  #openssl(files: CertificateFiles, args: string[], extensions: string[]): void {
    const config = `${files.certFile}.cnf`;
    writeFileSync(config, ["[req]", "distinguished_name = dn", "prompt = no", "[dn]", "[ext]", ...extensions, ""].join("\n"));
    try {
      execFileSync(
        "openssl",
        [
          "req", "-x509", "-new", "-noenc",
          "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-keyout", files.keyFile, "-out", files.certFile,
          "-config", config, "-extensions", "ext",
          ...args,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      chmodSync(files.keyFile, 0o600);
    } catch (cause) {
      const stderr = String((cause as { stderr?: Buffer }).stderr ?? "").trim();
      throw new DevClusterError(`Cannot issue certificate "${files.certFile}": openssl failed: ${stderr || String(cause)}`, { cause });
    } finally {
      rmSync(config, { force: true });
    }
  }
}
