/**
 * The sockets and pipes this process has open, for tests that check a
 * splice or a proxy closes every fd it made. Files the runtime opens and
 * closes meanwhile (the test runner's, a module being read) are not counted:
 * they made such counts flaky.
 *
 * @module
 */
import { readdirSync, readlinkSync } from "node:fs";

/** How many sockets and pipes the process has open. */
export function openFds(): number {
  return readdirSync("/proc/self/fd").filter((fd) => /^(socket|pipe):/.test(fdTarget(fd))).length;
}

function fdTarget(fd: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return ""; // closed since the listing (the listing's own fd among them)
  }
}
