/**
 * Where `palisade-sctp` lives: SCTP over raw IP sockets (native/sctp-raw.c),
 * for kernels without SCTP sockets. `palisade-sctp serve PORT...` is the
 * pods' SCTP responder (started by the pod server); `palisade-sctp probe
 * HOST PORT TIMEOUT_MS` is the SCTP prober of `palisade probe`, with the
 * probe client's output (connected, refused or timeout).
 *
 * @module
 */
import { join } from "node:path";
import { repositoryRoot } from "../../repository-root.ts";

/**
 * The `palisade-sctp` binary that `make -C native` (and `npm run build`) builds.
 *
 * @example
 * ```ts
 * execFileSync("ip", ["netns", "exec", netns, sctpRawBinary(), "probe", "10.244.1.5", "80", "1000"]);
 * ```
 */
export function sctpRawBinary(): string {
  return join(repositoryRoot(), "native", "out", "palisade-sctp");
}
