/**
 * The loopback ports of the control plane. Each has a default (the upstream
 * one) and an environment variable to override it, so tests can run a
 * cluster beside a user's; the value `0` picks a free port.
 *
 * @module
 */
import { createServer } from "node:net";
import { DevClusterError } from "./errors.ts";

/** The ports a dev control plane listens on, all on 127.0.0.1. */
export interface DevPorts {
  /** kube-apiserver's secure port. */
  apiserver: number;
  /** etcd's client port. */
  etcd: number;
  /** etcd's peer port (a single member, but etcd always listens on one). */
  etcdPeer: number;
  /** kube-controller-manager's secure (health) port. */
  controllerManager: number;
  /** kube-scheduler's secure (health) port. */
  scheduler: number;
}

/** Default port and environment variable of each {@link DevPorts} field. */
export const PORT_SETTINGS: Readonly<Record<keyof DevPorts, { env: string; default: number }>> = {
  apiserver: { env: "PALISADE_DEV_APISERVER_PORT", default: 6443 },
  etcd: { env: "PALISADE_DEV_ETCD_PORT", default: 2379 },
  etcdPeer: { env: "PALISADE_DEV_ETCD_PEER_PORT", default: 2380 },
  controllerManager: { env: "PALISADE_DEV_CONTROLLER_MANAGER_PORT", default: 10257 },
  scheduler: { env: "PALISADE_DEV_SCHEDULER_PORT", default: 10259 },
};

/** A free TCP port on 127.0.0.1, as the kernel hands it out right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function parsePort(env: string, text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new DevClusterError(`Cannot use ${env} "${text}": not a port number (0 picks a free one, else 1-65535)`);
  }
  return port;
}

/**
 * The ports from the environment: each variable of {@link PORT_SETTINGS} if
 * set (`0` = a free port), else its default, or a free port when `unset` is
 * "free" (for a cluster beside the default one, whose ports are the defaults).
 *
 * @example
 * ```ts
 * const ports = await portsFromEnv({ PALISADE_DEV_APISERVER_PORT: "0" });
 * ports.apiserver; // some free port
 * ports.etcd; // 2379
 * ```
 */
export async function portsFromEnv(env: NodeJS.ProcessEnv = process.env, unset: "default" | "free" = "default"): Promise<DevPorts> {
  const fields = Object.keys(PORT_SETTINGS) as (keyof DevPorts)[];
  const chosen = new Map<keyof DevPorts, number>();
  for (const field of fields) {
    const setting = PORT_SETTINGS[field];
    const text = env[setting.env];
    const port = text !== undefined && text !== "" ? parsePort(setting.env, text) : unset === "default" ? setting.default : 0;
    if (port === 0) continue;
    const clash = [...chosen].find(([, other]) => other === port);
    if (clash) throw new DevClusterError(`Cannot use ${setting.env} "${port}": the ${clash[0]} port is ${port} already`);
    chosen.set(field, port);
  }
  const taken = new Set(chosen.values());
  for (const field of fields) {
    if (chosen.has(field)) continue;
    let port = await freePort();
    // A closed probe socket's port can come back on the next probe.
    while (taken.has(port)) port = await freePort();
    taken.add(port);
    chosen.set(field, port);
  }
  return Object.fromEntries(chosen) as unknown as DevPorts;
}

/**
 * A free port for every component: for a cluster beside any other.
 *
 * @example
 * ```ts
 * await devUp(devLayout(tempDir), { nodes: 1, ports: await freePorts() }, () => {});
 * ```
 */
export function freePorts(): Promise<DevPorts> {
  return portsFromEnv({}, "free");
}
