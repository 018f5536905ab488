/**
 * The proxy's entry point behind `palisade proxy [--http-view-file PATH]
 * [--pin-root DIR] [--port N] [--metrics-port N] [--log-level LEVEL]`: one
 * process per node, apart from the agent so that an agent restart never
 * touches a proxied connection. It listens transparently (IPv4 and IPv6) on
 * the port the datapath steers HTTP- and TLS-ruled flows to, judges every
 * request and every TLS connection's ClientHello with the latest HTTP view
 * the agent wrote, and opens each upstream connection from the client's own
 * address to the original destination.
 * SIGTERM or SIGINT: stops accepting, closes the connections, exits 0.
 *
 * @module
 */
import type net from "node:net";
import { parseArgs } from "node:util";
import { DEFAULT_PIN_ROOT } from "../datapath/pin-root.ts";
import { jsonLogger, LOG_LEVELS } from "../k8s/logger.ts";
import { stopSignal } from "../stop-signal.ts";
import type { Logger, LogLevel } from "../k8s/logger.ts";
import type { ConnectionInfo } from "./http-front-options.ts";
import { NodeProxy } from "./node-proxy.ts";
import { DEFAULT_HTTP_VIEW_PATH, HttpViewIndex, parseHttpView } from "../policy/http-view.ts";
import { connectTransparent, DEFAULT_PROXY_PORT, listenTransparent, PinnedIpcache, releaseFreeMemory } from "../datapath/index.ts";
import { watchViewFile } from "./view-file.ts";
import type { KubernetesObject } from "@kubernetes/client-node";
import { KubeClient } from "../k8s/client.ts";
import { Informer } from "../k8s/informer.ts";
import { Resources } from "../k8s/resource.ts";
import { TLS_MATERIAL_LABEL, TLS_MATERIAL_NAMESPACE } from "../policy/tls-material.ts";
import { TlsMaterialStore } from "./tls-material-store.ts";
import type { TlsMaterialCopy } from "./tls-material-store.ts";

/** The proxy's health and metrics port unless told otherwise. */
export const DEFAULT_PROXY_METRICS_PORT = 9963;

/** The flags of `palisade proxy`. */
export interface RunProxyOptions {
  httpViewFile: string;
  pinRoot: string;
  port: number;
  metricsPort: number;
  logLevel: LogLevel;
  /** Where the API server is: TLS material is watched there; without it, connections rules would terminate are reset. */
  kubeconfig?: string;
}

/** The command line is wrong; the message says which flag. */
export class ProxyUsageError extends Error {
  override name = "ProxyUsageError";
}

/** `palisade proxy`'s part of the help. */
export const PROXY_HELP = `  palisade proxy [--http-view-file PATH] [--pin-root DIR] [--port N] [--metrics-port N] [--kubeconfig PATH] [--log-level debug|info|warn|error]
      Runs the node's transparent HTTP and TLS proxy: the datapath steers to --port (${DEFAULT_PROXY_PORT}) the flows
      whose policy carries HTTP or TLS rules; each request, and each TLS connection's ClientHello, is judged
      with the HTTP view the agent writes to PATH (${DEFAULT_HTTP_VIEW_PATH}; re-read when it changes; missing:
      every request refused with 403, every TLS connection reset) and the agent's ipcache pinned under DIR
      (${DEFAULT_PIN_ROOT}), refused (403, or a reset) or passed on from the client's own address. Refused,
      malformed, audited and unforwardable requests and connections are logged as JSON lines; /healthz,
      /readyz and /metrics on --metrics-port (${DEFAULT_PROXY_METRICS_PORT}). TLS termination presents the certificates
      of the Secrets in namespace ${TLS_MATERIAL_NAMESPACE}, watched with --kubeconfig (in a pod: its service
      account by default; elsewhere without the flag, connections rules would terminate are reset). Needs root (NET_ADMIN).`;

function port(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535 || value.trim() === "") throw new ProxyUsageError(`Cannot run proxy: --${flag} "${value}" is not a port number`);
  return n;
}

/**
 * Parses `palisade proxy`'s flags, defaults filled in.
 *
 * @example
 * ```ts
 * parseProxyArgs(["--port", "15001", "--log-level", "debug"]).logLevel; // "debug"
 * ```
 */
export function parseProxyArgs(args: string[]): RunProxyOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        "http-view-file": { type: "string" },
        "pin-root": { type: "string" },
        port: { type: "string" },
        "metrics-port": { type: "string" },
        "log-level": { type: "string" },
        kubeconfig: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (cause) {
    throw new ProxyUsageError(`Cannot run proxy: ${(cause as Error).message}`, { cause });
  }
  const logLevel = values["log-level"] ?? "info";
  if (!(logLevel in LOG_LEVELS)) throw new ProxyUsageError(`Cannot run proxy: --log-level "${logLevel}" is not one of ${Object.keys(LOG_LEVELS).join(", ")}`);
  for (const flag of ["http-view-file", "pin-root", "kubeconfig"] as const) {
    if (values[flag] === "") throw new ProxyUsageError(`Cannot run proxy: --${flag} is empty`);
  }
  return {
    httpViewFile: values["http-view-file"] ?? DEFAULT_HTTP_VIEW_PATH,
    pinRoot: values["pin-root"] ?? DEFAULT_PIN_ROOT,
    port: port("port", values.port, DEFAULT_PROXY_PORT),
    metricsPort: port("metrics-port", values["metrics-port"], DEFAULT_PROXY_METRICS_PORT),
    logLevel: logLevel as LogLevel,
    ...(values.kubeconfig !== undefined && { kubeconfig: values.kubeconfig }),
  };
}

/**
 * The identities of addresses from the agent's pinned ipcache, opened on
 * first use and again after a failure (the agent may pin it after the proxy
 * starts); a lookup that cannot be answered throws, which refuses the request.
 */
function pinnedIdentities(pinRoot: string, logger: Logger): { identityOf(address: string): number; close(): void } {
  let ipcache: PinnedIpcache | undefined;
  let failing = false;
  return {
    identityOf(address) {
      if (ipcache === undefined) {
        try {
          ipcache = PinnedIpcache.open(pinRoot);
        } catch (error) {
          if (!failing) logger.error({ pinRoot, err: error }, "Cannot open the agent's pinned ipcache; requests that need an identity are refused until it can be");
          failing = true;
          throw error;
        }
        if (failing) logger.info({ pinRoot }, "Opened the agent's pinned ipcache");
        failing = false;
      }
      return ipcache.identityOf(address);
    },
    close() {
      ipcache?.close();
    },
  };
}

/** How long an upstream connection may take to open before the request is answered 502. */
const UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;

/** The transparent connect for one proxied connection: from the client's address and port to its original destination. */
function connectOriginalDestination(connection: ConnectionInfo): Promise<net.Socket> {
  return connectTransparent({
    // The accepted socket's own address: IPv6 exactly when it has a colon (net.isIPv6's full pattern costs more than the rest of the call).
    family: connection.clientAddress.includes(":") ? 6 : 4,
    localAddress: connection.clientAddress,
    localPort: connection.clientPort,
    remoteAddress: connection.serverAddress,
    remotePort: connection.serverPort,
    // A SYN the L3/L4 policy drops would otherwise wait out the kernel's retries (about two minutes).
    timeoutMs: UPSTREAM_CONNECT_TIMEOUT_MS,
  });
}

/**
 * Watches the operator's copies of TLS material (Secrets in TLS_MATERIAL_NAMESPACE carrying its label) into
 * a store; they are held in memory only (the informer's cache and the store), never written or logged.
 * Without --kubeconfig and outside a pod, none: termination then fails closed.
 */
function watchTlsMaterial(options: RunProxyOptions, logger: Logger): { store: TlsMaterialStore; informer: Informer<TlsMaterialCopy & KubernetesObject> } | undefined {
  // In a pod, the service account's in-cluster configuration; elsewhere only what --kubeconfig names.
  if (options.kubeconfig === undefined && !process.env["KUBERNETES_SERVICE_HOST"]) {
    logger.warn({}, "No --kubeconfig and not in a pod: connections that rules would terminate are reset");
    return undefined;
  }
  let client: KubeClient;
  try {
    client = options.kubeconfig !== undefined ? KubeClient.fromFile(options.kubeconfig) : KubeClient.fromDefault();
  } catch (error) {
    logger.warn({ err: error }, "No API server to read TLS material from: connections that rules would terminate are reset");
    return undefined;
  }
  const store = new TlsMaterialStore();
  const informer = new Informer<TlsMaterialCopy & KubernetesObject>({
    client,
    resource: Resources.secrets,
    namespace: TLS_MATERIAL_NAMESPACE,
    labelSelector: `${TLS_MATERIAL_LABEL}=true`,
    logger,
  });
  informer.addHandlers({ onAdd: (copy) => store.put(copy), onUpdate: (_, copy) => store.put(copy), onDelete: (copy) => store.remove(copy) });
  informer.start();
  return { store, informer };
}

/**
 * Runs the proxy until SIGINT or SIGTERM; resolves after it stopped.
 *
 * @example
 * ```ts
 * await runProxy(parseProxyArgs(["--http-view-file", "/run/palisade/http-view.json"]));
 * ```
 */
export async function runProxy(options: RunProxyOptions): Promise<void> {
  // The flow log goes to stdout, where a DaemonSet's log collector reads it.
  const node = process.env["NODE_NAME"];
  const logger = jsonLogger(options.logLevel, { component: "proxy", ...(node !== undefined && node !== "" && { node }) }, (line) => process.stdout.write(line));
  const viewFile = watchViewFile({ path: options.httpViewFile, load: (json) => new HttpViewIndex(parseHttpView(json)), logger });
  const identities = pinnedIdentities(options.pinRoot, logger);
  const material = watchTlsMaterial(options, logger);
  const stopped = stopSignal().then((signal) => logger.info({ signal }, "Stopping on signal"));
  let proxy: NodeProxy | undefined;
  try {
    proxy = await NodeProxy.start({
      listen: (server, family) => listenTransparent(server, { family, port: options.port }),
      connectUpstream: connectOriginalDestination,
      judge: (request, connection) => {
        const index = viewFile.current;
        if (index === undefined) throw new Error(`no HTTP view: ${options.httpViewFile} is missing`);
        return index.judge(request, connection, (address) => identities.identityOf(address));
      },
      judgeConnection: (start, connection) => {
        const index = viewFile.current;
        if (index === undefined) throw new Error(`no HTTP view: ${options.httpViewFile} is missing`);
        return index.judgeConnection(start, connection, (address) => identities.identityOf(address));
      },
      view: () => ({ generation: viewFile.generation, loaded: viewFile.current !== undefined, errors: viewFile.errors }),
      logger,
      metricsPort: options.metricsPort,
      ...(material && { material: material.store }),
      releaseNativeMemory: releaseFreeMemory,
    });
    await stopped;
  } finally {
    await proxy?.stop();
    viewFile.close();
    identities.close();
    await material?.informer.stop();
  }
}

/** `palisade proxy ARGS`: runs the proxy from command-line flags. */
export async function proxyMain(args: string[]): Promise<void> {
  await runProxy(parseProxyArgs(args));
}
