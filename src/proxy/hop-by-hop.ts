/**
 * Hop-by-hop fields (RFC 9110 §7.6.1): a proxy removes `Connection`, every
 * field that `Connection` names, and the fields that are hop-by-hop by
 * definition (`Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade`) before it
 * forwards a message. `Transfer-Encoding` is kept: the proxy's HTTP/1.1 sides
 * re-frame the body from it (chunked stays chunked), so the next hop gets the
 * same message framed anew. `Expect` is answered by the proxy itself (it
 * judges before it says 100 Continue) and not forwarded.
 *
 * Field lists are given as a raw header list (`[name, value, name,
 * value, ...]`) and read once per message ({@link readFieldLines}): every
 * question below is asked of the names in lower case and the `Connection`
 * options that reading found.
 *
 * @module
 */

const ALWAYS_HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "upgrade", "expect"]);

/** A message's field lines, read once: the raw list, each line's name in lower case, the options of its `Connection` lines. */
export interface FieldLines {
  /** As received: `[name, value, name, value, ...]`. */
  raw: readonly string[];
  /** `lower[i]` is the name of `raw[2 * i]` in lower case. */
  lower: string[];
  /** The options of every `Connection` line, lower case. */
  connection: Set<string>;
}

/**
 * Reads a raw header list: its names in lower case and its `Connection` options.
 *
 * @example
 * ```ts
 * readFieldLines(["Connection", "Upgrade, HTTP2-Settings", "connection", "close"]).connection; // Set {"upgrade", "http2-settings", "close"}
 * ```
 */
export function readFieldLines(raw: readonly string[]): FieldLines {
  const lower: string[] = [];
  const connection = new Set<string>();
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index]!.toLowerCase();
    lower.push(name);
    if (name !== "connection") continue;
    for (const option of raw[index + 1]!.split(",")) connection.add(option.trim().toLowerCase());
  }
  return { raw, lower, connection };
}

/**
 * The end-to-end field lines of a message, in order, as a raw header list.
 *
 * @example
 * ```ts
 * endToEndFields(readFieldLines(["Host", "a", "Connection", "close, X-Trace", "X-Trace", "1", "Accept", "*\/*"]));
 * // ["Host", "a", "Accept", "*\/*"]
 * ```
 */
export function endToEndFields({ raw, lower, connection }: FieldLines): string[] {
  const fields: string[] = [];
  for (let line = 0; line < lower.length; line++) {
    const name = lower[line]!;
    if (ALWAYS_HOP_BY_HOP.has(name) || connection.has(name)) continue;
    fields.push(raw[2 * line]!, raw[2 * line + 1]!);
  }
  return fields;
}

/** Fields that say where a message ends or whom it is for; a `Connection` option naming one is refused, not obeyed. */
const NEVER_CONNECTION_OPTIONS = ["host", "content-length", "transfer-encoding"];

/**
 * The framing or host field that a `Connection` line names, if any: removing it
 * would change how the next hop reads the message (RFC 9110 §7.6.1 forbids
 * sending such an option), keeping it would ignore the client: either way the
 * two hops would read the message differently, so the request is refused.
 *
 * @example
 * ```ts
 * framingFieldNamedByConnection(readFieldLines(["Connection", "keep-alive, Content-Length"])); // "content-length"
 * ```
 */
export function framingFieldNamedByConnection({ connection }: FieldLines): string | undefined {
  return NEVER_CONNECTION_OPTIONS.find((name) => connection.has(name));
}
