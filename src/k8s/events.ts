/**
 * Records Kubernetes Events (events.k8s.io/v1) about objects, so that
 * `kubectl describe` and `kubectl events` show what the controller
 * decided. A repeat of the same event is folded into the first one's
 * `series` instead of creating another object.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import type { KubeClient } from "./client.ts";
import { PatchType } from "./client.ts";
import { isNotFound } from "./errors.ts";
import { jsonLogger } from "./logger.ts";
import type { Logger } from "./logger.ts";
import { resourcePath, Resources } from "./resource.ts";

/** The type of an Event. */
export type EventType = "Normal" | "Warning";

/** Options of an {@linkcode EventRecorder}. */
export interface EventRecorderOptions {
  /** The API server to write to. */
  client: KubeClient;
  /** `reportingController`, e.g. `"palisade.dev/operator"`. */
  controller: string;
  /** `reportingInstance`, e.g. the pod or node name of this process. */
  instance: string;
  /** Where failures to record are logged; JSON lines on stderr by default. */
  logger?: Logger;
  /** Repeats within this window join the first event's series; 10 minutes by default. */
  seriesWindowMs?: number;
}

/** The events.k8s.io/v1 Event fields the recorder writes. */
interface EventObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
  eventTime: string;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  note: string;
  type: EventType;
  regarding: Record<string, string | undefined>;
  series?: { count: number; lastObservedTime: string };
}

interface SeriesEntry {
  namespace: string;
  name: string;
  count: number;
  firstSeen: number;
}

const MAX_NOTE_BYTES = 1024;
const MAX_TRACKED_SERIES = 4096;

/** `date` as metav1.MicroTime serialises it: RFC 3339 with microseconds. */
export function formatMicroTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Writes Events about objects. Recording is best effort: a failure is
 * logged, never thrown, since an Event must not fail the work it describes.
 *
 * @example
 * ```ts
 * const events = new EventRecorder({ client, controller: "palisade.dev/operator", instance: hostname() });
 * await events.record(policy, "Warning", "InvalidPolicy", "Validate", 'spec.ingress[0].ports[0].port 0 is out of range');
 * ```
 */
export class EventRecorder {
  readonly #options: EventRecorderOptions;
  readonly #log: Logger;
  readonly #series = new Map<string, SeriesEntry>();

  /** A recorder writing as `options.controller`/`options.instance`. */
  constructor(options: EventRecorderOptions) {
    this.#options = options;
    this.#log = options.logger ?? jsonLogger();
  }

  /**
   * Records that `action` on `regarding` had outcome `reason`, explained by
   * `note` (cut to 1 KiB). Events about cluster-scoped objects go to the
   * `default` namespace.
   */
  async record(regarding: KubernetesObject, type: EventType, reason: string, action: string, note: string, now = new Date()): Promise<void> {
    const namespace = regarding.metadata?.namespace || "default";
    const name = regarding.metadata?.name ?? "";
    const trimmedNote = truncateUtf8(note, MAX_NOTE_BYTES);
    const seriesKey = JSON.stringify([regarding.metadata?.uid ?? `${namespace}/${name}`, type, reason, action, trimmedNote]);
    try {
      const entry = this.#series.get(seriesKey);
      const windowMs = this.#options.seriesWindowMs ?? 600_000;
      if (entry && now.getTime() - entry.firstSeen < windowMs) {
        entry.count++;
        try {
          await this.#options.client.request("PATCH", resourcePath(Resources.events, { namespace: entry.namespace, name: entry.name }), {
            body: { series: { count: entry.count, lastObservedTime: formatMicroTime(now) } },
            contentType: PatchType.merge,
          });
          return;
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
      const event: EventObject = {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { name: `${name}.${randomBytes(8).toString("hex")}`, namespace },
        eventTime: formatMicroTime(now),
        reportingController: this.#options.controller,
        reportingInstance: this.#options.instance,
        action,
        reason,
        note: trimmedNote,
        type,
        regarding: {
          apiVersion: regarding.apiVersion,
          kind: regarding.kind,
          namespace: regarding.metadata?.namespace,
          name,
          uid: regarding.metadata?.uid,
          resourceVersion: regarding.metadata?.resourceVersion,
        },
      };
      await this.#options.client.request("POST", resourcePath(Resources.events, { namespace }), { body: event });
      this.#series.delete(seriesKey);
      this.#series.set(seriesKey, { namespace, name: event.metadata.name, count: 1, firstSeen: now.getTime() });
      if (this.#series.size > MAX_TRACKED_SERIES) {
        const oldest = this.#series.keys().next();
        if (!oldest.done) this.#series.delete(oldest.value);
      }
    } catch (e) {
      this.#log.warn({ err: e, namespace, name, kind: regarding.kind, reason }, "Cannot record event");
    }
  }
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text);
  if (bytes.length <= maxBytes) return text;
  // Cut on a character boundary: drop continuation bytes left dangling at the end.
  let end = maxBytes;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString();
}
