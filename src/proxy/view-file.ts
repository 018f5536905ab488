/**
 * The proxy's copy of a JSON file another process publishes (the agent's
 * HTTP view): read at start, read again whenever it changes. The writer
 * replaces the file atomically (write a temporary file, rename it over), so
 * a read sees the old file or the new one, never half of one. Changes are
 * noticed by `fs.watch` on the file's folder (a rename replaces the inode a
 * watch on the file itself would follow) and, since inotify events can be
 * missed (a folder created later, an overlay filesystem), by a periodic
 * `stat` as well; the file is read only when its inode, size or times
 * changed.
 *
 * A missing file is a state like any other: no view (`current` undefined).
 * A file that cannot be parsed or loaded keeps the previous view, and the
 * error is logged once per version of the file.
 *
 * @example
 * ```ts
 * const file = watchViewFile({ path: "/run/palisade/http-view.json", load: (json) => new HttpViewIndex(parseHttpView(json)), logger });
 * file.current?.judge(request, connection, identityOf);
 * file.close();
 * ```
 *
 * @module
 */
import { readFileSync, statSync, watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "../k8s/logger.ts";

/** Options of {@linkcode watchViewFile}. */
export interface ViewFileOptions<V> {
  path: string;
  /** Turns the parsed JSON into the view; throws with a clear message on a malformed one. */
  load: (json: unknown) => V;
  logger: Logger;
  /** How often the file's `stat` is checked besides the folder watch. Default 2 s. */
  pollIntervalMs?: number;
  /** Called after every change of `current` (a new view, or the file gone). */
  onChange?: (view: V | undefined) => void;
}

/** A watched view file. */
export interface ViewFile<V> {
  /** The latest view loaded; undefined while the file is missing. */
  readonly current: V | undefined;
  /** How many times `current` changed (every load, the file going missing), counted from 1 at start. */
  readonly generation: number;
  /** Malformed versions of the file seen (each counted once). */
  readonly errors: number;
  /** Checks the file now (what the watch and the poll do). */
  refresh(): void;
  /** Stops watching. */
  close(): void;
}

/** The default interval of the `stat` fallback. */
export const VIEW_FILE_POLL_MS = 2_000;

/** What tells one version of the file from another: a renamed-over file has a new inode. */
function signatureOf(path: string): string | undefined {
  try {
    const stat = statSync(path, { bigint: true });
    return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

export function watchViewFile<V>(options: ViewFileOptions<V>): ViewFile<V> {
  const { path, logger } = options;
  let current: V | undefined;
  let generation = 0;
  let errors = 0;
  // "unread" before the first check, so that a missing file at start is a change too.
  let seen: string | undefined = "unread";
  let watcher: FSWatcher | undefined;
  let closed = false;

  const changed = (view: V | undefined): void => {
    current = view;
    generation++;
    options.onChange?.(view);
  };

  function refresh(): void {
    if (closed) return;
    let signature: string | undefined;
    try {
      signature = signatureOf(path);
    } catch (error) {
      logger.error({ path, err: error }, "Cannot stat the HTTP view file; keeping the view in use");
      return;
    }
    if (signature === seen) return;
    seen = signature;
    if (signature === undefined) {
      logger.warn({ path }, "No HTTP view file: every proxied request is refused (403) until the agent writes it");
      changed(undefined);
      return;
    }
    let view: V;
    try {
      view = options.load(JSON.parse(readFileSync(path, "utf8")));
    } catch (error) {
      // Gone between stat and read: the next check sees it missing.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        seen = "unread";
        return;
      }
      errors++;
      logger.error({ path, err: error }, `Cannot load the HTTP view file; keeping the ${current === undefined ? "missing view (every request refused)" : "previous view"}`);
      return;
    }
    changed(view);
    logger.info({ path, generation }, "HTTP view loaded");
  }

  /** Watches the folder (when it exists; retried on every poll until it does). */
  function ensureWatch(): void {
    if (watcher !== undefined || closed) return;
    const name = basename(path);
    try {
      watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) refresh();
      });
      watcher.on("error", () => {
        watcher?.close();
        watcher = undefined;
      });
    } catch {
      watcher = undefined;
    }
  }

  ensureWatch();
  refresh();
  const timer = setInterval(() => {
    ensureWatch();
    refresh();
  }, options.pollIntervalMs ?? VIEW_FILE_POLL_MS);
  timer.unref();

  return {
    get current() {
      return current;
    },
    get generation() {
      return generation;
    },
    get errors() {
      return errors;
    },
    refresh,
    close() {
      closed = true;
      clearInterval(timer);
      watcher?.close();
      watcher = undefined;
    },
  };
}
