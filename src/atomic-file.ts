/**
 * Replacing a file so that a reader sees the old content or the new, never a
 * part: the new content goes to a temporary file beside it, which is renamed
 * over the old one (rename is atomic within a filesystem).
 *
 * @module
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Writes `content` to `path` atomically, creating its folder.
 *
 * @example
 * ```ts
 * writeFileAtomically("/run/palisade/http-view.json", JSON.stringify(view));
 * ```
 */
export function writeFileAtomically(path: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, content, { mode });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
