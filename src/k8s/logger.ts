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

/** The numbers {@linkcode jsonLogger} writes as `level`, pino's. */
export const LOG_LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** Level names of {@linkcode jsonLogger}, lowest first. */
export type LogLevel = keyof typeof LOG_LEVELS;

/** Where log lines go. */
export type LineSink = (line: string) => void;

/**
 * A logger writing one JSON object per line (to stderr unless `sink` says
 * otherwise), with pino's field names (`level` as a number, `time` in epoch
 * milliseconds, `msg`). Lines below `level` are dropped; errors in fields
 * become `{type, message, cause}`; bigints become strings, since JSON has no
 * bigint.
 *
 * @example
 * ```ts
 * const log = jsonLogger("info", { component: "operator" });
 * log.warn({ resource: "pods" }, "Watch failed, retrying"); // {"level":40,"time":...,"component":"operator","resource":"pods","msg":"Watch failed, retrying"}
 * ```
 */
export function jsonLogger(level: LogLevel = "info", base: LogFields = {}, sink: LineSink = (line) => process.stderr.write(line)): Logger {
  const threshold = LOG_LEVELS[level];
  const write = (lvl: LogLevel) => (fields: LogFields, message: string): void => {
    if (LOG_LEVELS[lvl] < threshold) return;
    const line: LogFields = { level: LOG_LEVELS[lvl], time: Date.now(), ...base };
    for (const [key, value] of Object.entries(fields)) line[key] = plain(value);
    line["msg"] = message;
    sink(`${JSON.stringify(line)}\n`);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const out: LogFields = { type: value.name, message: value.message };
    if (value.cause !== undefined) out["cause"] = plain(value.cause);
    return out;
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}
