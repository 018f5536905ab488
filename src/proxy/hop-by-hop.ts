/**
 * Hop-by-hop fields (RFC 9110 §7.6.1): a proxy removes `Connection`, every
 * field that `Connection` names, and the fields that are hop-by-hop by
 * definition (`Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade`) before it
 * forwards a message. `Transfer-Encoding` is kept: the HTTP/1.1 client and
 * server of Node re-frame the body from it (chunked stays chunked), so the
 * next hop gets the same message framed anew. `Expect` is answered by the
 * proxy itself (it judges before it says 100 Continue) and not forwarded.
 *
 * @module
 */

const ALWAYS_HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "upgrade", "expect"]);

/**
 * The end-to-end field lines of a message given as Node's raw header list
 * (`[name, value, name, value, ...]`), in order, as name/value pairs.
 *
 * @example
 * ```ts
 * endToEndFields(["Host", "a", "Connection", "close, X-Trace", "X-Trace", "1", "Accept", "*\/*"]);
 * // [["Host", "a"], ["Accept", "*\/*"]]
 * ```
 */
export function endToEndFields(rawHeaders: readonly string[]): [string, string][] {
  const named = connectionOptions(rawHeaders);
  const fields: [string, string][] = [];
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const name = rawHeaders[index] ?? "";
    const lower = name.toLowerCase();
    if (ALWAYS_HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    fields.push([name, rawHeaders[index + 1] ?? ""]);
  }
  return fields;
}

/** Fields that say where a message ends or whom it is for; a `Connection` option naming one is refused, not obeyed. */
const NEVER_CONNECTION_OPTIONS = new Set(["host", "content-length", "transfer-encoding"]);

/**
 * The framing or host field that a `Connection` line names, if any: removing it
 * would change how the next hop reads the message (RFC 9110 §7.6.1 forbids
 * sending such an option), keeping it would ignore the client: either way the
 * two hops would read the message differently, so the request is refused.
 */
export function framingFieldNamedByConnection(rawHeaders: readonly string[]): string | undefined {
  for (const name of connectionOptions(rawHeaders)) {
    if (NEVER_CONNECTION_OPTIONS.has(name)) return name;
  }
  return undefined;
}

/**
 * The options of every `Connection` line of a message (Node's raw header list), lower case.
 *
 * @example
 * ```ts
 * connectionOptions(["Connection", "Upgrade, HTTP2-Settings", "Connection", "close"]); // Set {"upgrade", "http2-settings", "close"}
 * ```
 */
export function connectionOptions(rawHeaders: readonly string[]): Set<string> {
  const options = new Set<string>();
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    if (rawHeaders[index]?.toLowerCase() !== "connection") continue;
    for (const option of (rawHeaders[index + 1] ?? "").split(",")) options.add(option.trim().toLowerCase());
  }
  return options;
}

/** Name/value pairs as Node's flat raw header list. */
export function flatFields(fields: readonly (readonly [string, string])[]): string[] {
  return fields.flatMap(([name, value]) => [name, value]);
}
