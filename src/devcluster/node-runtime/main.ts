/**
 * The node runtime as a process, as `dev up` starts it (detached, one per
 * node): `node main.js --node-index N --kubeconfig PATH --state-dir DIR`.
 * Logs "Node runtime synced" once the first list of Pods was acted on.
 * Stops watching on SIGTERM or SIGINT; the sandboxes stay for the next run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { jsonLogger } from "../../k8s/index.ts";
import { NODE_NAME_PREFIX } from "../nodes.ts";
import { runNodeRuntime } from "./node-runtime.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    options: { "node-index": { type: "string" }, kubeconfig: { type: "string" }, "state-dir": { type: "string" } },
    strict: true,
  });
  const nodeIndex = Number(values["node-index"]);
  const kubeconfig = values.kubeconfig;
  const stateDir = values["state-dir"];
  if (!Number.isInteger(nodeIndex) || kubeconfig === undefined || stateDir === undefined) {
    process.stderr.write("Usage: main.js --node-index N --kubeconfig PATH --state-dir DIR\n");
    process.exit(2);
  }
  const nodeName = `${NODE_NAME_PREFIX}${nodeIndex}`;
  const logger = jsonLogger("info", { component: "node-runtime", node: nodeName });
  const runtime = runNodeRuntime({ nodeName, nodeIndex, kubeconfig, stateDir, logger });
  // Whoever started the process (dev up, tests) can tell from the log when the first list was acted on.
  void runtime.synced.then(() => logger.info({}, "Node runtime synced"));
  const stop = (): void => {
    void runtime.stop().then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
