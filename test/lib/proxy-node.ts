/**
 * The node side of the proxy steering suite, run in the node's network
 * namespace (`nsenter --net=...`, as the agent runs there): `node
 * proxy-node.js PIN_ROOT HOST_IF...` opens the datapath pinned under
 * PIN_ROOT, attaches it to each pod's host-side interface, installs the
 * proxy routing and attaches `pal_to_proxy` to the proxy device, then
 * prints `{"ifindexes": {...}, "device": {...}}` and exits: everything it
 * made is pinned or lives in the namespace.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { Datapath } from "../../src/datapath/datapath.ts";
import { ifNameToIndex } from "../../src/datapath/native.ts";
import { installProxyRouting } from "../../src/datapath/proxy-routing.ts";

/** This script (compiled). */
export const PROXY_NODE_PATH = fileURLToPath(import.meta.url);

if (import.meta.main) {
  const [pinRoot = "", ...hostIfs] = process.argv.slice(2);
  const datapath = Datapath.open({ pinRoot });
  try {
    const ifindexes = Object.fromEntries(hostIfs.map((name) => [name, ifNameToIndex(name)]));
    for (const ifindex of Object.values(ifindexes)) datapath.attach(ifindex);
    const device = installProxyRouting();
    datapath.attachProxyDevice(device.receiverIfindex);
    process.stdout.write(`${JSON.stringify({ ifindexes, device })}\n`);
  } finally {
    datapath.close();
  }
}
