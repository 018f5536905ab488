import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Logger } from "../k8s/logger.ts";
import { watchViewFile } from "./view-file.ts";
import type { ViewFile } from "./view-file.ts";

interface TestView {
  rules: string[];
}

function loadTestView(json: unknown): TestView {
  const rules = (json as { rules?: unknown }).rules;
  if (!Array.isArray(rules)) throw new Error("Cannot read HTTP view: rules is not a list");
  return { rules: rules.map(String) };
}

/** Log lines as `level msg`, for assertions. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (_fields: Record<string, unknown>, message: string) => void lines.push(`${level} ${message}`);
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** Replaces `path` as the agent does: a temporary file renamed over it. */
function replaceAtomically(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

/** Resolves once `file`'s generation passes `generation` (the watch or the poll saw the change). */
async function nextGeneration<V>(file: ViewFile<V>, generation: number): Promise<void> {
  while (file.generation <= generation) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("the HTTP view file", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "palisade-view-file-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("missing at start: no view, said in a log line; loaded once the writer renames it into place", async () => {
    const path = join(dir, "missing.json");
    const logger = recordingLogger();
    const file = watchViewFile({ path, load: loadTestView, logger });
    try {
      assert.equal(file.current, undefined);
      assert.equal(file.generation, 1);
      assert.match(logger.lines.join("\n"), /warn No HTTP view file: every proxied request is refused \(403\)/);
      replaceAtomically(path, JSON.stringify({ rules: ["a"] }));
      await nextGeneration(file, 1);
      assert.deepEqual(file.current, { rules: ["a"] });
    } finally {
      file.close();
    }
  });

  test("each atomic replacement is a new view, whether the folder watch or the stat poll notices it", async () => {
    const path = join(dir, "replaced.json");
    replaceAtomically(path, JSON.stringify({ rules: ["one"] }));
    // A poll far in the future: the folder watch alone must notice.
    const watched = watchViewFile({ path, load: loadTestView, logger: recordingLogger(), pollIntervalMs: 3_600_000 });
    // A file whose folder watch is gone: the poll alone must notice.
    const polled = watchViewFile({ path, load: loadTestView, logger: recordingLogger(), pollIntervalMs: 20 });
    try {
      assert.deepEqual(watched.current, { rules: ["one"] });
      for (const rules of [["two"], ["three", "four"]]) {
        const generations = [watched.generation, polled.generation];
        replaceAtomically(path, JSON.stringify({ rules }));
        await Promise.all([nextGeneration(watched, generations[0] as number), nextGeneration(polled, generations[1] as number)]);
        assert.deepEqual(watched.current, { rules });
        assert.deepEqual(polled.current, { rules });
      }
    } finally {
      watched.close();
      polled.close();
    }
  });

  test("a malformed file keeps the previous view and logs an error once; a good one after it is loaded", async () => {
    const path = join(dir, "malformed.json");
    replaceAtomically(path, JSON.stringify({ rules: ["kept"] }));
    const logger = recordingLogger();
    const file = watchViewFile({ path, load: loadTestView, logger, pollIntervalMs: 20 });
    try {
      for (const bad of ["{not json", JSON.stringify({ rules: "nope" })]) {
        const errors = file.errors;
        replaceAtomically(path, bad);
        while (file.errors === errors) await new Promise((resolve) => setTimeout(resolve, 10));
        assert.deepEqual(file.current, { rules: ["kept"] });
      }
      // Polls go on; the same bad file is not logged again.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(file.errors, 2);
      const errorLines = logger.lines.filter((line) => line.startsWith("error "));
      assert.deepEqual(errorLines, ["error Cannot load the HTTP view file; keeping the previous view", "error Cannot load the HTTP view file; keeping the previous view"]);
      const generation = file.generation;
      replaceAtomically(path, JSON.stringify({ rules: ["fixed"] }));
      await nextGeneration(file, generation);
      assert.deepEqual(file.current, { rules: ["fixed"] });
    } finally {
      file.close();
    }
  });

  test("a file removed: no view again (every request refused), and onChange hears of it", async () => {
    const path = join(dir, "removed.json");
    replaceAtomically(path, JSON.stringify({ rules: ["x"] }));
    const changes: (TestView | undefined)[] = [];
    const file = watchViewFile({ path, load: loadTestView, logger: recordingLogger(), pollIntervalMs: 20, onChange: (view) => changes.push(view) });
    try {
      const generation = file.generation;
      unlinkSync(path);
      await nextGeneration(file, generation);
      assert.equal(file.current, undefined);
      assert.deepEqual(changes, [{ rules: ["x"] }, undefined]);
    } finally {
      file.close();
    }
  });

  test("a folder that appears later is watched from then on", async () => {
    const path = join(dir, "later", "view.json");
    const file = watchViewFile({ path, load: loadTestView, logger: recordingLogger(), pollIntervalMs: 20 });
    try {
      assert.equal(file.current, undefined);
      mkdirSync(join(dir, "later"));
      const generation = file.generation;
      replaceAtomically(path, JSON.stringify({ rules: ["late"] }));
      await nextGeneration(file, generation);
      assert.deepEqual(file.current, { rules: ["late"] });
    } finally {
      file.close();
    }
  });
});
