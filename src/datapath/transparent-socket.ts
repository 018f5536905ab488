/**
 * The sockets of the node's transparent proxy. The datapath delivers the
 * flows it steers (policy with HTTP rules) to a listener bound with
 * IP_TRANSPARENT, so the accepted socket's local address is the original
 * destination; the proxy opens the upstream connection from the client's
 * own address and port, so the server and its policy see the client. Both
 * carry {@link PROXY_MARK_FROM}, by which the datapath knows the proxy's
 * packets: judged by L3/L4 policy, never steered back.
 *
 * @module
 */
import { Socket, type Server } from "node:net";
import { transparentListen, transparentSocket } from "./native.ts";

/** skb->mark bits of packets steered to a local socket (PAL_MARK_TO_PROXY): a fwmark rule routes them to the local table. */
export const PROXY_MARK_TO = 0x0a00;
/** skb->mark bits of packets the proxy sends (PAL_MARK_FROM_PROXY): the SO_MARK of its sockets. */
export const PROXY_MARK_FROM = 0x0b00;
/** The skb->mark bits proxy steering owns (PAL_MARK_PROXY_MASK); the others are left alone. */
export const PROXY_MARK_MASK = 0x0f00;
/** The proxy's listening port unless configured otherwise. */
export const DEFAULT_PROXY_PORT = 15001;

/**
 * Node flags the proxy process runs with: a young generation of 2 MiB per semi-space instead of
 * 16 keeps its memory near 100 MiB holding 1000 connections (156 MiB with the default, bench:http)
 * with no measurable loss of throughput; 1 MiB halved it. `--single-threaded` runs V8's garbage
 * collector and compilers on the main thread: what their helper threads allocated under load stayed
 * with the process (about 15 MiB of RSS after a load run), and on 2 cores the proxy's CPU per
 * request did not grow without them (docs/l7.md). `--max-old-space-size=256` is what Node picks by
 * itself in the DaemonSet's container (512Mi limit: V8 sizes its heap from it); without a memory limit
 * (the dev cluster, bench:http) it sizes for the whole machine and lets the old generation grow up to
 * 4 times its live size between full collections instead of 1.3, and the pages of that peak stay with
 * the process: 95-96 MiB against 84.5 after 20,000 new connections (loopback), CPU per request within noise.
 * V8 flags: not accepted in NODE_OPTIONS.
 */
export const PROXY_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2", "--max-old-space-size=256", "--single-threaded"];

/** An address family as the proxy's sockets take it. */
export type ProxyFamily = 4 | 6;

/** Where {@link listenTransparent} listens. */
export interface TransparentListenOptions {
  family: ProxyFamily;
  port: number;
  /** SO_MARK of the listener and its accepted sockets; default {@link PROXY_MARK_FROM}. */
  mark?: number;
}

/**
 * Makes `server` listen with IP_TRANSPARENT on the wildcard address of
 * `family` (IPv6 only for 6: call it once per family, on two servers or
 * the same handler) and resolves once it listens. Accepted sockets have
 * the flow's original destination as their local address.
 *
 * @example
 * ```ts
 * const server = createServer((client) => proxy(client));
 * await listenTransparent(server, { family: 4, port: DEFAULT_PROXY_PORT });
 * ```
 * @throws {BpfError} (code `EPERM`, `EADDRINUSE`, ...) when the socket cannot be made.
 */
export async function listenTransparent(server: Server, options: TransparentListenOptions): Promise<void> {
  const fd = transparentListen(options.family, options.port, options.mark ?? PROXY_MARK_FROM);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** The upstream connection of {@link connectTransparent}. */
export interface TransparentConnectOptions {
  family: ProxyFamily;
  /** The client's address and port: the connection's source. */
  localAddress: string;
  localPort: number;
  /** The flow's original destination. */
  remoteAddress: string;
  remotePort: number;
  /** SO_MARK of the socket; default {@link PROXY_MARK_FROM}. */
  mark?: number;
  /** Gives up after this long (rejects with code `ETIMEDOUT`); default: the kernel's SYN retries. */
  timeoutMs?: number;
}

/** A transparent connection could not be opened; `code` is the errno name, e.g. `ECONNREFUSED` or `ETIMEDOUT`. */
export class TransparentConnectError extends Error {
  override name = "TransparentConnectError";
  readonly code: string;

  constructor(message: string, code: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Opens a TCP connection from `localAddress`:`localPort` (any address: IP_TRANSPARENT)
 * to `remoteAddress`:`remotePort` and resolves with the connected socket,
 * which Node owns (close it as any other). Rejects with a
 * {@link TransparentConnectError} if the connection fails or times out.
 *
 * @example
 * ```ts
 * const upstream = await connectTransparent({
 *   family: 4, localAddress: client.remoteAddress, localPort: client.remotePort,
 *   remoteAddress: client.localAddress, remotePort: client.localPort,
 * });
 * client.pipe(upstream).pipe(client);
 * ```
 */
export function connectTransparent(options: TransparentConnectOptions): Promise<Socket> {
  const { family, localAddress, localPort, remoteAddress, remotePort } = options;
  const what = `from ${endpoint(family, localAddress, localPort)} to ${endpoint(family, remoteAddress, remotePort)}`;
  let fd: number;
  try {
    fd = transparentSocket(family, localAddress, localPort, options.mark ?? PROXY_MARK_FROM);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return Promise.reject(new TransparentConnectError(`Cannot connect ${what}: ${(error as Error).message}`, typeof code === "string" ? code : "EINVAL", { cause: error }));
  }
  // Node adopts the bound fd and runs the non-blocking connect on it: the
  // connect is issued in the same tick, before the handle is ever polled.
  const socket = new Socket({ fd });
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const fail = (code: string, cause?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new TransparentConnectError(`Cannot connect ${what}: ${code}${cause === undefined ? "" : ` (${cause.message})`}`, code, { cause }));
    };
    const onError = (error: NodeJS.ErrnoException) => fail(error.code ?? "EIO", error);
    socket.once("error", onError);
    if (options.timeoutMs !== undefined) timer = setTimeout(() => fail("ETIMEDOUT"), options.timeoutMs);
    socket.connect({ host: remoteAddress, port: remotePort, family }, () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

function endpoint(family: ProxyFamily, address: string, port: number): string {
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}
