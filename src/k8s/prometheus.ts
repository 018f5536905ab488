/**
 * The Prometheus text exposition format (version 0.0.4), written once for
 * every component: metric families with HELP and TYPE lines, label values
 * escaped, and cumulative histograms.
 *
 * @module
 */

/** One sample line of a family. */
export interface MetricSample {
  /** Appended to the family name: `_bucket`, `_sum`, `_count` for histograms. */
  suffix?: string;
  labels?: Readonly<Record<string, string>>;
  value: number | bigint;
}

/** A metric family: its name, type, help text and samples. */
export interface MetricFamily {
  name: string;
  type: "counter" | "gauge" | "histogram";
  help: string;
  samples: readonly MetricSample[];
}

/**
 * A cumulative histogram of observations, as Prometheus defines one.
 *
 * @example
 * ```ts
 * const h = new Histogram([0.1, 1]);
 * h.observe(0.05);
 * h.count; // 1
 * ```
 */
export class Histogram {
  /** Bucket upper bounds, ascending (the `+Inf` bucket is implicit). */
  readonly bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** An empty histogram with the given ascending bucket bounds. */
  constructor(bounds: readonly number[]) {
    this.bounds = [...bounds];
    this.#counts = bounds.map(() => 0);
  }

  /** Records one value. */
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    this.bounds.forEach((bound, i) => {
      if (value <= bound) this.#counts[i] = (this.#counts[i] ?? 0) + 1;
    });
  }

  /** Number of observations. */
  get count(): number {
    return this.#count;
  }

  /** Sum of observations. */
  get sum(): number {
    return this.#sum;
  }

  /** The `_bucket`, `_sum` and `_count` samples of this histogram. */
  samples(): MetricSample[] {
    return [
      ...this.bounds.map((bound, i) => ({ suffix: "_bucket", labels: { le: String(bound) }, value: this.#counts[i] ?? 0 })),
      { suffix: "_bucket", labels: { le: "+Inf" }, value: this.#count },
      { suffix: "_sum", value: this.#sum },
      { suffix: "_count", value: this.#count },
    ];
  }
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

/**
 * The families as Prometheus text, ending with a newline.
 *
 * @example
 * ```ts
 * renderPrometheus([{ name: "palisade_endpoints", type: "gauge", help: "Local pods.", samples: [{ value: 3 }] }]);
 * // "# HELP palisade_endpoints Local pods.\n# TYPE palisade_endpoints gauge\npalisade_endpoints 3\n"
 * ```
 */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines = families.flatMap((family) => [
    `# HELP ${family.name} ${family.help}`,
    `# TYPE ${family.name} ${family.type}`,
    ...family.samples.map(({ suffix = "", labels, value }) => {
      const pairs = Object.entries(labels ?? {}).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      return `${family.name}${suffix}${pairs.length > 0 ? `{${pairs.join(",")}}` : ""} ${value}`;
    }),
  ]);
  return `${lines.join("\n")}\n`;
}
