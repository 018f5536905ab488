/**
 * Temporary folders for suites that run dev clusters: `pl-<purpose>-…` under
 * the temporary folder, with the dev folder inside, marked with the test
 * process that owns it. Removing one takes its cluster down first. A run
 * that was killed cannot clean up after itself, so the test runner reaps
 * every marked folder whose owner is dead (and every dev network whose
 * folder is gone) before it starts.
 *
 * @module
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PORT_SETTINGS, devDown, devLayout, usedNetworks, type DevLayout } from "../../src/devcluster/index.ts";
import { reapKernelObjects } from "./kernel-journal.ts";
import { processStartTime } from "./processes.ts";

/** The file marking a folder with the process that owns it: `<pid> <start time>`. */
const OWNER_FILE = ".test-owner";

/** A temporary folder for one suite's dev cluster. */
export interface TestFolder {
  /** The temporary folder itself. */
  root: string;
  /** The dev folder inside it (`PALISADE_DEV_DIR`). */
  layout: DevLayout;
  /** This process's environment for `palisade dev` on this folder, on free ports. */
  env: NodeJS.ProcessEnv;
  /** Takes the folder's cluster down (whatever it got to) and removes the folder. */
  remove(): Promise<void>;
}

/**
 * A new folder `pl-<purpose>-…` owned by this process.
 *
 * @example
 * ```ts
 * const folder = testFolder("e2e");
 * after(() => folder.remove());
 * ```
 */
export function testFolder(purpose: string): TestFolder {
  const root = mkdtempSync(join(tmpdir(), `pl-${purpose}-`));
  writeFileSync(join(root, OWNER_FILE), `${process.pid} ${processStartTime(process.pid)}\n`);
  const layout = devLayout(join(root, "dev"));
  return {
    root,
    layout,
    env: { ...process.env, PALISADE_DEV_DIR: layout.dir, ...Object.fromEntries(Object.values(PORT_SETTINGS).map((setting) => [setting.env, "0"])) },
    remove: () => removeTestFolder(root),
  };
}

async function removeTestFolder(root: string): Promise<void> {
  try {
    await devDown(devLayout(join(root, "dev")), () => {});
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Whether the process that marked `root` is gone. */
function ownerGone(root: string): boolean {
  const [pid = "", started = ""] = readFileSync(join(root, OWNER_FILE), "utf8").trim().split(" ");
  return processStartTime(Number(pid)) !== started;
}

/**
 * Takes down and removes what killed test runs left: every marked folder
 * whose owner is dead, every dev network whose folder no longer exists, and
 * every kernel object in the journal of a test process that is gone (see
 * kernel-journal.ts). Returns what it reaped, one line each.
 *
 * @example
 * ```ts
 * for (const line of await reapOrphans()) console.error(`reaped ${line}`);
 * ```
 */
export async function reapOrphans(): Promise<string[]> {
  const reaped: string[] = [];
  for (const entry of readdirSync(tmpdir()).filter((name) => name.startsWith("pl-"))) {
    const root = join(tmpdir(), entry);
    if (!existsSync(join(root, OWNER_FILE)) || !ownerGone(root)) continue;
    await removeTestFolder(root);
    reaped.push(`test folder ${root}`);
  }
  for (const { network, owner } of usedNetworks()) {
    if (owner === "" || existsSync(owner)) continue;
    await devDown(devLayout(owner), () => {});
    reaped.push(`network of slot ${network.slot} (bridge ${network.bridge}) of the removed folder ${owner}`);
  }
  return [...reaped, ...reapKernelObjects()];
}
