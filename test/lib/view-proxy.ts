/**
 * A node proxy over loopback that judges by a compiled world's HTTP view, as
 * the agent publishes it, with each loopback connection taken for a flow
 * between the world's pods: what the TLS termination suites run against.
 *
 * @module
 */
import { once } from "node:events";
import { jsonLogger } from "../../src/k8s/logger.ts";
import type { ConnectionInfo, ConnectUpstream } from "../../src/proxy/http-front-options.ts";
import { NodeProxy } from "../../src/proxy/node-proxy.ts";
import type { TlsMaterialStore } from "../../src/proxy/tls-material-store.ts";
import type { CompiledHttpWorld } from "./http-world.ts";

export interface ViewProxyOptions {
  /** The world judged by now. */
  world: () => CompiledHttpWorld;
  /** The flow a loopback connection stands for. */
  flow: (connection: ConnectionInfo) => ConnectionInfo;
  connectUpstream: ConnectUpstream;
  /** Without it, connections rules would terminate are reset. */
  material?: TlsMaterialStore;
  /** Where flow-log lines go (JSON); nowhere by default. */
  log?: (line: string) => void;
}

/** Starts an IPv4 proxy on 127.0.0.1 (any port) judging by the world's view. */
export function startViewProxy(options: ViewProxyOptions): Promise<NodeProxy> {
  return NodeProxy.start({
    families: [4],
    listen: async (server) => {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
    },
    connectUpstream: options.connectUpstream,
    judge: (request, connection) => options.world().index.judge(request, options.flow(connection), options.world().identityOf),
    judgeConnection: (start, connection) => options.world().index.judgeConnection(start, options.flow(connection), options.world().identityOf),
    view: () => ({ generation: 1, loaded: true, errors: 0 }),
    logger: jsonLogger("info", {}, options.log ?? (() => undefined)),
    metricsPort: 0,
    metricsHost: "127.0.0.1",
    ...(options.material && { material: options.material }),
  });
}
