/**
 * The node runtime as a process, as `dev up` starts it (detached, one per
 * node): `node main.js --node-index N --network-slot K --kubeconfig PATH --state-dir DIR`.
 * Logs "Node runtime synced" once the first list of Pods was acted on.
 * Stops watching on SIGTERM or SIGINT; the sandboxes stay for the next run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { jsonLogger } from "../../k8s/index.ts";
import { devNetwork, devNodeSpec } from "../dev-network.ts";
import { runNodeRuntime } from "./node-runtime.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    options: { "node-index": { type: "string" }, "network-slot": { type: "string" }, kubeconfig: { type: "string" }, "state-dir": { type: "string" } },
    strict: true,
  });
  const nodeIndex = Number(values["node-index"]);
  const networkSlot = Number(values["network-slot"]);
  const kubeconfig = values.kubeconfig;
  const stateDir = values["state-dir"];
  if (!Number.isInteger(nodeIndex) || !Number.isInteger(networkSlot) || kubeconfig === undefined || stateDir === undefined) {
    process.stderr.write("Usage: main.js --node-index N --network-slot K --kubeconfig PATH --state-dir DIR\n");
    process.exit(2);
  }
  const network = devNetwork(networkSlot);
  const logger = jsonLogger("info", { component: "node-runtime", node: devNodeSpec(network, nodeIndex).name });
  const runtime = runNodeRuntime({ network, nodeIndex, kubeconfig, stateDir, logger });
  // Whoever started the process (dev up, tests) can tell from the log when the first list was acted on.
  void runtime.synced.then(() => logger.info({}, "Node runtime synced"));
  const stop = (): void => {
    void runtime.stop().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
