/**
 * What an HTTP/1.1 request asks of an Upgrade (RFC 9110 §7.8): a request asks
 * to switch protocols when its `Connection` names the `upgrade` option and it
 * has an `Upgrade` field (the front end then stops reading at the end of its
 * head, http1-front.ts). The proxy honors one protocol only, WebSocket (RFC 6455
 * §4.1), asked for alone; any other (`h2c`, RFC 7540 §3.2, gone from RFC
 * 9113) is not honored: the request is forwarded as a plain request, its
 * upgrade fields removed, as Envoy does. What could be read two ways is
 * refused: several `Upgrade` lines, a list naming WebSocket among other
 * protocols or with a version (the server might pick another one), a value
 * that is not a protocol list, a body (the reader stops after the head: the
 * body would be taken for what follows the switch).
 *
 * @module
 */
import type { FieldLines } from "./hop-by-hop.ts";

/** The protocol the proxy switches to. */
export const WEBSOCKET = "websocket";

/** What to do with a request that asks to switch protocols. */
export type UpgradeAsk =
  /** Switch to WebSocket if the server agrees; `value`: the Upgrade field as received. */
  | { kind: "websocket"; value: string }
  /** Forward as a plain request, the upgrade fields removed (another protocol, or HTTP/1.0: RFC 9110 §7.8). */
  | { kind: "ignored" }
  /** 400 and close. */
  | { kind: "refused"; reason: string };

/** RFC 9110 §7.8: protocol-name ["/" protocol-version], both tokens. */
const PROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?$/;

/**
 * Whether a request's field lines ask to switch protocols.
 *
 * @example
 * ```ts
 * asksUpgrade(readFieldLines(["Host", "a", "Connection", "Upgrade", "Upgrade", "websocket"])); // true
 * asksUpgrade(readFieldLines(["Host", "a", "Upgrade", "websocket"])); // false: no upgrade option
 * ```
 */
export function asksUpgrade({ lower, connection }: FieldLines): boolean {
  return connection.has("upgrade") && lower.includes("upgrade");
}

/**
 * How the proxy treats a request that {@link asksUpgrade}.
 *
 * @example
 * ```ts
 * upgradeAsk(readFieldLines(["Host", "a", "Connection", "Upgrade", "Upgrade", "websocket"]), "1.1"); // { kind: "websocket", value: "websocket" }
 * upgradeAsk(readFieldLines(["Host", "a", "Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAA"]), "1.1"); // { kind: "ignored" }
 * upgradeAsk(readFieldLines(["Host", "a", "Connection", "Upgrade", "Upgrade", "websocket, h2c"]), "1.1"); // refused
 * ```
 */
export function upgradeAsk({ raw, lower }: FieldLines, httpVersion: string): UpgradeAsk {
  const values: string[] = [];
  for (let line = 0; line < lower.length; line++) {
    const name = lower[line]!;
    const value = raw[2 * line + 1]!;
    if (name === "upgrade") values.push(value);
    else if (name === "transfer-encoding" || (name === "content-length" && Number(value) !== 0)) {
      return { kind: "refused", reason: "Upgrade on a request with a body" };
    }
  }
  if (values.length !== 1) return { kind: "refused", reason: "more than one Upgrade line" };
  const value = values[0]!;
  const protocols = value.split(",").map((element) => element.trim()).filter((element) => element !== "");
  if (protocols.length === 0 || protocols.some((protocol) => !PROTOCOL.test(protocol))) return { kind: "refused", reason: "Upgrade is not a list of protocols" };
  const websocket = protocols.filter((protocol) => protocol.split("/")[0]!.toLowerCase() === WEBSOCKET);
  if (websocket.length === 0 || httpVersion !== "1.1") return { kind: "ignored" };
  if (protocols.length > 1) return { kind: "refused", reason: "Upgrade names websocket among other protocols" };
  if (websocket[0]!.includes("/")) return { kind: "refused", reason: "Upgrade names websocket with a version" };
  return { kind: "websocket", value: websocket[0]! };
}
