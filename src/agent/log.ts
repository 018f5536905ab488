/**
 * The agent's structured log: one JSON object per line on stdout, with
 * `time` (ISO 8601), `level` (a name), `msg`, and the caller's fields. It
 * has the k8s runtime's {@linkcode Logger} shape, so the informers and the
 * work queue log through it too.
 *
 * @module
 */
import type { LogFields, Logger } from "../k8s/logger.ts";

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** Level names of {@linkcode agentLogger}, lowest first. */
export type AgentLogLevel = keyof typeof LEVELS;

/** Where log lines go; stdout by default. */
export type LineSink = (line: string) => void;

/**
 * A logger printing one JSON line per call. Lines below `level` are
 * dropped; errors in fields become `{type, message, cause}`; bigints become
 * strings, since JSON has no bigint.
 *
 * @example
 * ```ts
 * const log = agentLogger("info", { node: "node-1" });
 * log.info({ endpoints: 3 }, "Applied policy");
 * // {"time":"2025-01-01T00:00:00.000Z","level":"info","msg":"Applied policy","node":"node-1","endpoints":3}
 * ```
 */
export function agentLogger(level: AgentLogLevel = "info", base: LogFields = {}, sink: LineSink = (line) => process.stdout.write(line)): Logger {
  const threshold = LEVELS[level];
  const write = (lvl: AgentLogLevel) => (fields: LogFields, message: string): void => {
    if (LEVELS[lvl] < threshold) return;
    const line: LogFields = { time: new Date().toISOString(), level: lvl, msg: message, ...base };
    for (const [key, value] of Object.entries(fields)) line[key] = plain(value);
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
