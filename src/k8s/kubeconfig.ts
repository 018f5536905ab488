/**
 * Kubeconfig files, and the in-cluster service account, as the
 * {@linkcode KubeClient} connects with them: the current context's server
 * and the TLS and authentication options of each request.
 *
 * Read here rather than through `@kubernetes/client-node`'s `KubeConfig`,
 * whose module loads the library's whole generated API (about 2,500
 * modules, some 70 MB of memory in every process) for the few fields used.
 * Supported: client certificates, CA, `insecure-skip-tls-verify`,
 * `tls-server-name`, bearer tokens (inline or `tokenFile`), basic auth and
 * exec credential
 * plugins (`client.authentication.k8s.io`, the credential kept until it
 * expires). Files (certificates, keys, CAs, token files) are read again
 * for every request, so rotated ones are used without a restart. Fields that would change how requests are made but are not
 * supported (`auth-provider`, impersonation, `proxy-url`) are refused with
 * an error naming them, never ignored.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import type * as https from "node:https";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { isIPv6 } from "node:net";
import type * as Yaml from "yaml";

/** Where a pod's service account credentials are mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** PEM data given inline (decoded once), or a file read again for every request. */
type Pem = { data: Buffer } | { file: string };

function pemOf(source: Pem | undefined): Buffer | undefined {
  if (source === undefined) return undefined;
  return "data" in source ? source.data : readFileSync(source.file);
}

/** How requests authenticate, read from a kubeconfig `user` (or the service account). */
interface User {
  cert?: Pem;
  key?: Pem;
  token?: string;
  tokenFile?: string;
  basic?: string;
  exec?: ExecPlugin;
}

interface ExecPlugin {
  apiVersion: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Where relative commands are found: the kubeconfig's folder. */
  cwd: string | undefined;
}

interface Cluster {
  server: string;
  ca?: Pem;
  insecure: boolean;
  serverName?: string;
}

/** An exec plugin's credential, and when it must be fetched again (ms since the epoch; Infinity if it does not expire). */
interface ExecCredential {
  token?: string;
  cert?: Buffer;
  key?: Buffer;
  expiresAt: number;
}

type Fields = Record<string, unknown>;

/**
 * A kubeconfig file's document. JSON, which YAML 1.2 reads the same, is read without the YAML parser: loading
 * it costs about 10 MiB of RSS in every process, and the dev cluster writes its kubeconfigs as JSON (in a
 * pod, the service account needs no file at all).
 */
function parseDocument(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return (createRequire(import.meta.url)("yaml") as typeof Yaml).parse(text);
  }
}

function isRecord(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * One context of a kubeconfig, resolved: where the API server is and how to
 * talk to it.
 *
 * @example
 * ```ts
 * const config = Kubeconfig.fromFile("/var/lib/palisade/dev/admin.kubeconfig");
 * https.request(new URL(config.server + "/version"), { ...(await config.requestOptions()) });
 * ```
 */
export class Kubeconfig {
  /** The API server's base URL, without a trailing slash. */
  readonly server: string;
  /** The context's name (`inCluster` for the service account). */
  readonly context: string;
  readonly #cluster: Cluster;
  readonly #user: User;
  #execCredential: Promise<ExecCredential> | undefined;

  private constructor(context: string, cluster: Cluster, user: User) {
    this.context = context;
    this.#cluster = cluster;
    this.#user = user;
    this.server = cluster.server.replace(/\/+$/, "");
  }

  /**
   * The current context of the kubeconfig file(s) at `paths`, merged as
   * kubectl merges `$KUBECONFIG`: the first file that names a cluster, user
   * or context, or sets `current-context`, wins.
   *
   * @throws {Error} naming the file and field when a file cannot be read or says something unsupported or malformed.
   */
  static fromFile(...paths: string[]): Kubeconfig {
    const clusters = new Map<string, { file: string; fields: Fields }>();
    const users = new Map<string, { file: string; fields: Fields }>();
    const contexts = new Map<string, { file: string; fields: Fields }>();
    let current: string | undefined;
    for (const file of paths) {
      const doc = parseDocument(readFileSync(file, "utf8"));
      if (doc === null || doc === undefined) continue;
      if (!isRecord(doc)) throw new Error(`${file} is not a kubeconfig: expected a mapping at the top`);
      const named = (list: string, into: Map<string, { file: string; fields: Fields }>, field: string): void => {
        const entries = doc[list] ?? [];
        if (!Array.isArray(entries)) throw new Error(`${file}: ${list} must be a list`);
        entries.forEach((entry: unknown, i) => {
          if (!isRecord(entry) || typeof entry.name !== "string" || !isRecord(entry[field] ?? {})) throw new Error(`${file}: ${list}[${i}] must have a name and a ${field} mapping`);
          if (!into.has(entry.name)) into.set(entry.name, { file, fields: (entry[field] ?? {}) as Fields });
        });
      };
      named("clusters", clusters, "cluster");
      named("users", users, "user");
      named("contexts", contexts, "context");
      const set = doc["current-context"];
      if (current === undefined && typeof set === "string" && set !== "") current = set;
    }
    const where = paths.join(", ");
    if (current === undefined) throw new Error(`${where} sets no current-context`);
    const context = contexts.get(current);
    if (context === undefined) throw new Error(`${where}: current-context "${current}" names no context`);
    const clusterName = context.fields.cluster;
    const userName = context.fields.user;
    const cluster = typeof clusterName === "string" ? clusters.get(clusterName) : undefined;
    if (cluster === undefined) throw new Error(`${context.file}: context "${current}" names no cluster of the file(s), its cluster is ${JSON.stringify(clusterName)}`);
    const user = typeof userName === "string" && userName !== "" ? users.get(userName) : undefined;
    if (user === undefined && userName !== undefined && userName !== "") throw new Error(`${context.file}: context "${current}" names user ${JSON.stringify(userName)}, which no file defines`);
    return new Kubeconfig(current, readCluster(cluster.file, String(clusterName), cluster.fields), user === undefined ? {} : readUser(user.file, String(userName), user.fields));
  }

  /**
   * As kubectl and client-go find one: the files of `$KUBECONFIG`, else
   * `~/.kube/config`, else the pod's service account ({@linkcode inCluster}).
   */
  static fromDefault(): Kubeconfig {
    const files = (process.env["KUBECONFIG"] ?? "").split(delimiter).filter((file) => file !== "");
    if (files.length > 0) return Kubeconfig.fromFile(...files);
    const home = join(homedir(), ".kube", "config");
    if (existsSync(home)) return Kubeconfig.fromFile(home);
    if (process.env["KUBERNETES_SERVICE_HOST"] !== undefined) return Kubeconfig.inCluster();
    throw new Error("no kubeconfig: $KUBECONFIG is not set, ~/.kube/config does not exist and this is not a pod ($KUBERNETES_SERVICE_HOST is not set)");
  }

  /**
   * The pod's service account: the API server at `$KUBERNETES_SERVICE_HOST`
   * and `$KUBERNETES_SERVICE_PORT`, its token (read again for every request:
   * the kubelet rotates it) and the cluster's CA from `dir`.
   */
  static inCluster(dir: string = SERVICE_ACCOUNT_DIR): Kubeconfig {
    const host = process.env["KUBERNETES_SERVICE_HOST"];
    const port = process.env["KUBERNETES_SERVICE_PORT"];
    if (!host || !port) throw new Error("not in a cluster: $KUBERNETES_SERVICE_HOST and $KUBERNETES_SERVICE_PORT must both be set");
    const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
    const ca = join(dir, "ca.crt");
    readFileSync(ca);
    return new Kubeconfig("inCluster", { server, ca: { file: ca }, insecure: false }, { tokenFile: join(dir, "token") });
  }

  /** The same credentials against another server URL (e.g. a test's proxy in front of the API server). */
  withServer(server: string): Kubeconfig {
    return new Kubeconfig(this.context, { ...this.#cluster, server }, this.#user);
  }

  /**
   * The TLS and header options of one request: CA, client certificate,
   * server name and the Authorization header, the exec plugin run first
   * when its credential is missing or expired.
   */
  async requestOptions(): Promise<https.RequestOptions> {
    const cluster = this.#cluster;
    const user = this.#user;
    const options: https.RequestOptions = { headers: {} };
    const ca = pemOf(cluster.ca);
    if (ca) options.ca = ca;
    if (cluster.insecure) options.rejectUnauthorized = false;
    if (cluster.serverName) options.servername = cluster.serverName;
    const credential = user.exec === undefined ? undefined : await this.#execute(user.exec);
    const cert = credential?.cert ?? pemOf(user.cert);
    const key = credential?.key ?? pemOf(user.key);
    if (cert) options.cert = cert;
    if (key) options.key = key;
    const token = credential?.token ?? user.token ?? (user.tokenFile === undefined ? undefined : readFileSync(user.tokenFile, "utf8").trim());
    const headers = options.headers as Record<string, string>;
    if (token) headers["authorization"] = `Bearer ${token}`;
    else if (user.basic) headers["authorization"] = `Basic ${Buffer.from(user.basic).toString("base64")}`;
    return options;
  }

  #execute(plugin: ExecPlugin): Promise<ExecCredential> {
    const cached = this.#execCredential;
    if (cached !== undefined) {
      return cached.then((credential) => (credential.expiresAt > Date.now() + 10_000 ? credential : this.#runPlugin(plugin)));
    }
    return this.#runPlugin(plugin);
  }

  #runPlugin(plugin: ExecPlugin): Promise<ExecCredential> {
    const info = JSON.stringify({ apiVersion: plugin.apiVersion, kind: "ExecCredential", spec: { interactive: false } });
    const running = new Promise<ExecCredential>((resolve, reject) => {
      execFile(plugin.command, plugin.args, { env: { ...process.env, ...plugin.env, KUBERNETES_EXEC_INFO: info }, timeout: 60_000, maxBuffer: 1 << 20, ...(plugin.cwd === undefined ? {} : { cwd: plugin.cwd }) }, (error, stdout) => {
        if (error) {
          reject(new Error(`exec credential plugin ${JSON.stringify(plugin.command)} failed: ${error.message}`, { cause: error }));
          return;
        }
        try {
          resolve(readExecCredential(plugin, stdout));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    this.#execCredential = running;
    // A failed run is not kept: the next request runs the plugin again.
    running.catch(() => {
      if (this.#execCredential === running) this.#execCredential = undefined;
    });
    return running;
  }
}

function readExecCredential(plugin: ExecPlugin, stdout: string): ExecCredential {
  const what = `exec credential plugin ${JSON.stringify(plugin.command)}`;
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (e) {
    throw new Error(`${what} printed no JSON ExecCredential`, { cause: e });
  }
  const status = isRecord(doc) ? doc.status : undefined;
  if (!isRecord(doc) || doc.kind !== "ExecCredential" || !isRecord(status)) throw new Error(`${what} printed no ExecCredential with a status`);
  const text = (field: string): string | undefined => {
    const value = status[field];
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value !== "string") throw new Error(`${what}: status.${field} must be a string`);
    return value;
  };
  const token = text("token");
  const cert = text("clientCertificateData");
  const key = text("clientKeyData");
  if (token === undefined && (cert === undefined || key === undefined)) throw new Error(`${what}: status must hold a token, or clientCertificateData and clientKeyData`);
  if ((cert === undefined) !== (key === undefined)) throw new Error(`${what}: status.clientCertificateData and status.clientKeyData go together`);
  const expiry = text("expirationTimestamp");
  const expiresAt = expiry === undefined ? Infinity : Date.parse(expiry);
  if (Number.isNaN(expiresAt)) throw new Error(`${what}: status.expirationTimestamp ${JSON.stringify(expiry)} is not a time`);
  return { ...(token === undefined ? {} : { token }), ...(cert === undefined ? {} : { cert: Buffer.from(cert), key: Buffer.from(key ?? "") }), expiresAt };
}

/** Reads the fields of one cluster or user: each known field checked, each unknown one refused. */
function fieldReader(file: string, what: string, fields: Fields, known: readonly string[]) {
  const at = (field: string): string => `${file}: ${what} field ${JSON.stringify(field)}`;
  for (const field of Object.keys(fields)) {
    if (!known.includes(field) && fields[field] !== null) throw new Error(`${at(field)} is not supported`);
  }
  const text = (field: string): string | undefined => {
    const value = fields[field];
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value !== "string") throw new Error(`${at(field)} must be a string`);
    return value;
  };
  /** A file path, relative to the kubeconfig's folder. */
  const path = (field: string): string | undefined => {
    const value = text(field);
    return value === undefined || isAbsolute(value) ? value : join(dirname(file), value);
  };
  /** PEM data, from `field-data` (base64) or the file `field` (read now, so a missing one is reported at once); both at once is ambiguous. */
  const pem = (field: string): Pem | undefined => {
    const data = text(`${field}-data`);
    const from = path(field);
    if (data !== undefined && from !== undefined) throw new Error(`${at(field)} and ${JSON.stringify(`${field}-data`)} are both set: set one`);
    if (data !== undefined) return { data: Buffer.from(data, "base64") };
    if (from === undefined) return undefined;
    readFileSync(from);
    return { file: from };
  };
  return { at, text, path, pem };
}

function readCluster(file: string, name: string, fields: Fields): Cluster {
  const read = fieldReader(file, `cluster "${name}"`, fields, ["server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify", "tls-server-name", "extensions", "disable-compression"]);
  const server = read.text("server");
  if (server === undefined) throw new Error(`${read.at("server")} is required`);
  const insecure = fields["insecure-skip-tls-verify"] ?? false;
  if (typeof insecure !== "boolean") throw new Error(`${read.at("insecure-skip-tls-verify")} must be true or false`);
  const ca = read.pem("certificate-authority");
  const serverName = read.text("tls-server-name");
  return { server, insecure, ...(ca === undefined ? {} : { ca }), ...(serverName === undefined ? {} : { serverName }) };
}

function readUser(file: string, name: string, fields: Fields): User {
  const read = fieldReader(file, `user "${name}"`, fields, ["client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile", "username", "password", "exec", "extensions"]);
  const user: User = {};
  const cert = read.pem("client-certificate");
  const key = read.pem("client-key");
  if ((cert === undefined) !== (key === undefined)) throw new Error(`${read.at(cert === undefined ? "client-key" : "client-certificate")} is set without its ${cert === undefined ? "certificate" : "key"}`);
  if (cert && key) Object.assign(user, { cert, key });
  const token = read.text("token");
  const tokenFile = read.path("tokenFile");
  if (token !== undefined && tokenFile !== undefined) throw new Error(`${read.at("token")} and "tokenFile" are both set: set one`);
  if (token !== undefined) user.token = token;
  if (tokenFile !== undefined) user.tokenFile = tokenFile;
  const username = read.text("username");
  if (username !== undefined && (token !== undefined || tokenFile !== undefined)) throw new Error(`${read.at("username")} and a token are both set: set one way to authenticate`);
  if (username !== undefined) user.basic = `${username}:${read.text("password") ?? ""}`;
  const exec = fields.exec;
  if (exec !== undefined && exec !== null) user.exec = readExec(file, name, exec);
  return user;
}

function readExec(file: string, name: string, exec: unknown): ExecPlugin {
  const at = (field: string): string => `${file}: user "${name}" field "exec.${field}"`;
  if (!isRecord(exec)) throw new Error(`${file}: user "${name}" field "exec" must be a mapping`);
  const { apiVersion, command, args = [], env = [], provideClusterInfo = false } = exec;
  if (provideClusterInfo !== false) throw new Error(`${at("provideClusterInfo")} is not supported`);
  if (typeof apiVersion !== "string" || !apiVersion.startsWith("client.authentication.k8s.io/")) throw new Error(`${at("apiVersion")} must be a client.authentication.k8s.io version`);
  if (typeof command !== "string" || command === "") throw new Error(`${at("command")} is required`);
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === "string")) throw new Error(`${at("args")} must be a list of strings`);
  if (!Array.isArray(env) || !env.every((entry) => isRecord(entry) && typeof entry.name === "string" && typeof entry.value === "string")) throw new Error(`${at("env")} must be a list of {name, value} strings`);
  const vars = Object.fromEntries((env as { name: string; value: string }[]).map((entry) => [entry.name, entry.value]));
  // A command with a slash but not absolute is relative to the kubeconfig's folder, as in client-go.
  return { apiVersion, command, args: args as string[], env: vars, cwd: command.includes("/") && !isAbsolute(command) ? dirname(file) : undefined };
}
