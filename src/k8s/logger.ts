/**
 * The structured logger the runtime writes to: pino's call shape
 * (`logger.warn({ fields }, "message")`), so a pino instance can be passed
 * as is, and a small JSON-lines default for when none is.
 *
 * @module
 */

/** Structured fields of a log line, e.g. `{ resource: "pods", namespace: "x" }`. */
export type LogFields = Record<string, unknown>;

/** A structured logger with pino's signature. */
export interface Logger {
  /** Routine progress, e.g. a watch restarting after the server closed it. */
  debug(fields: LogFields, message: string): void;
  /** Notable state changes, e.g. leadership acquired. */
  info(fields: LogFields, message: string): void;
  /** Failures the runtime recovers from by itself, e.g. a watch error followed by a retry. */
  warn(fields: LogFields, message: string): void;
  /** Failures that lose work, e.g. an event handler throwing. */
  error(fields: LogFields, message: string): void;
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** Level names of {@linkcode jsonLogger}, lowest first. */
export type LogLevel = keyof typeof LEVELS;

/**
 * A logger writing one JSON object per line to stderr, with pino's field
 * names (`level` as a number, `time` in epoch milliseconds, `msg`). Lines
 * below `level` are dropped; errors in fields are flattened to their message.
 *
 * @example
 * ```ts
 * const log = jsonLogger("info", { component: "operator" });
 * log.warn({ resource: "pods" }, "Watch failed, retrying"); // {"level":40,"time":...,"component":"operator","resource":"pods","msg":"Watch failed, retrying"}
 * ```
 */
export function jsonLogger(level: LogLevel = "info", base: LogFields = {}): Logger {
  const threshold = LEVELS[level];
  const write = (lvl: LogLevel) => (fields: LogFields, message: string): void => {
    if (LEVELS[lvl] < threshold) return;
    const line: LogFields = { level: LEVELS[lvl], time: Date.now(), ...base };
    for (const [key, value] of Object.entries(fields)) {
      line[key] = value instanceof Error ? errorFields(value) : value;
    }
    line["msg"] = message;
    process.stderr.write(`${JSON.stringify(line)}\n`);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

function errorFields(e: Error): LogFields {
  const out: LogFields = { type: e.name, message: e.message };
  if (e.cause instanceof Error) out["cause"] = errorFields(e.cause);
  return out;
}
