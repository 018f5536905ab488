/**
 * Waiting for a server in another network namespace to listen.
 *
 * @module
 */
import { execFileSync } from "node:child_process";

/** A server did not come up. */
export class ListenerError extends Error {
  override name = "ListenerError";
}

function listening(netns: string, port: number): boolean {
  const output = execFileSync("nsenter", [`--net=/var/run/netns/${netns}`, "ss", "-Htln", `sport = :${port}`], { encoding: "utf8" });
  return output.trim() !== "";
}

/**
 * Resolves once a TCP socket listens on `port` in the network namespace
 * `netns`; rejects after `timeoutMs`, or as soon as `failure` returns why
 * the server cannot come up (it exited, say).
 *
 * @example
 * ```ts
 * await waitForListener("pl1a2b3c-server", 8080, () => (child.exitCode === null ? undefined : "nginx exited"));
 * ```
 */
export async function waitForListener(netns: string, port: number, failure: () => string | undefined, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const why = failure();
    if (why !== undefined) throw new ListenerError(`Cannot start the server on port ${port} in ${netns}: ${why}`);
    if (listening(netns, port)) return;
    if (performance.now() > deadline) throw new ListenerError(`Cannot start the server on port ${port} in ${netns}: nothing listens after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
