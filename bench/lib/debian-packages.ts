/**
 * Debian packages a benchmark runs (wrk, nginx-light): installed with
 * apt-get when missing, so a fresh machine needs no manual step.
 *
 * @module
 */
import { execFileSync } from "node:child_process";

function installed(name: string): boolean {
  try {
    return execFileSync("dpkg-query", ["-W", "-f=${Status}", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).includes("install ok installed");
  } catch {
    return false;
  }
}

/**
 * Installs the packages of `names` that are not installed yet (apt-get
 * update first); does nothing when all are.
 *
 * @example
 * ```ts
 * ensureDebianPackages(["wrk", "nginx-light"], (line) => console.error(line));
 * ```
 */
export function ensureDebianPackages(names: readonly string[], log: (line: string) => void): void {
  const missing = names.filter((name) => !installed(name));
  if (missing.length === 0) return;
  log(`installing Debian packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-q"], { stdio: ["ignore", "ignore", "inherit"], env });
  execFileSync("apt-get", ["install", "-y", "-q", ...missing], { stdio: ["ignore", "ignore", "inherit"], env });
}
