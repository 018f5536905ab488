import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import type { KubeClient, WatchEvent } from "./client.ts";
import { KubeApiError } from "./errors.ts";
import { Informer } from "./informer.ts";
import type { LogFields, Logger } from "./logger.ts";
import { Resources } from "./resource.ts";

interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion: string };
}

type Step = { list: Obj[]; resourceVersion: string } | { fail: KubeApiError } | "watch until stopped";

/** A client answering lists and watches from a script, in order; every call takes the next step. */
function scriptedClient(steps: Step[]): KubeClient {
  const next = (): Step => {
    const step = steps.shift();
    assert.ok(step, "the informer called the API server more often than scripted");
    return step;
  };
  return {
    request: async () => {
      const step = next();
      if (typeof step === "object" && "fail" in step) throw step.fail;
      assert.ok(typeof step === "object" && "list" in step, `a list got ${JSON.stringify(step)}`);
      return { metadata: { resourceVersion: step.resourceVersion }, items: step.list };
    },
    // A watch that sends no event: it fails at once, or ends when the informer stops.
    watch: (_path: string, _query: unknown, options: { signal?: AbortSignal }): AsyncIterable<WatchEvent<Obj>> => ({
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<WatchEvent<Obj>>> => {
          const step = next();
          if (typeof step === "object" && "fail" in step) throw step.fail;
          assert.equal(step, "watch until stopped");
          if (options.signal && !options.signal.aborted) await once(options.signal, "abort");
          return { done: true, value: undefined };
        },
      }),
    }),
  } as unknown as KubeClient;
}

const quiet: Logger = { debug: () => {}, info: () => {}, warn: (_: LogFields) => {}, error: (_: LogFields) => {} };
const path = "GET /apis/palisade.dev/v1alpha1/ebpfnetworkpolicies?watch=true";

test("after a 429 (storage re-initialising once a CRD changed) the informer waits as told, not its growing backoff, and re-lists at once on 410", { timeout: 10_000 }, async () => {
  const policy: Obj = { metadata: { name: "p", namespace: "x", resourceVersion: "3" } };
  const client = scriptedClient([
    { list: [], resourceVersion: "1" },
    { fail: new KubeApiError(path, 429, { reason: "TooManyRequests", message: "storage is (re)initializing", details: { retryAfterSeconds: 0.05 } }) },
    { fail: new KubeApiError(path, 429, { reason: "TooManyRequests", message: "storage is (re)initializing", details: { retryAfterSeconds: 0.05 } }) },
    { fail: new KubeApiError(path, 410, { reason: "Expired", message: "too old resource version: 1 (3)" }) },
    { list: [policy], resourceVersion: "3" },
    "watch until stopped",
  ]);
  // A backoff this long would outlast the test: only the server's word may set the wait.
  const informer = new Informer<Obj>({ client, resource: Resources.ebpfNetworkPolicies, logger: quiet, backoff: { initialMs: 600_000, jitter: 0 } });
  const added = new Promise<Obj>((resolve) => informer.addHandlers({ onAdd: resolve }));
  informer.start();
  try {
    assert.equal((await added).metadata.name, "p");
  } finally {
    await informer.stop();
  }
});
