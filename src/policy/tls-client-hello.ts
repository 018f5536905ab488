/**
 * Reading the server name a TLS client asks for (SNI, RFC 6066 §3) from the
 * first bytes of a connection, without terminating TLS: the ClientHello
 * handshake message (RFC 8446 §4.1.2, the same layout as TLS 1.2's, RFC 5246
 * §7.4.1.2) carried in one or more handshake records. A ClientHello may span
 * several records and several TCP segments (post-quantum key shares make it
 * larger than one segment): the caller feeds the bytes received so far and
 * gets `incomplete` until the message is whole.
 *
 * The reading is strict, since a name read one way here and another way by
 * the server would be a way around policy: every length must agree with the
 * one enclosing it, an extension may appear once, `server_name` must hold
 * exactly one `host_name` entry that is a DNS name (RFC 6066: ASCII, no
 * trailing dot, not an IP literal), and records other than handshake records
 * before the ClientHello ends, SSLv2-style hellos and other handshake
 * messages are refused.
 *
 * @example
 * ```ts
 * readClientHello(firstBytes); // { state: "complete", serverName: "api.stripe.com", bytes: 517 }
 * ```
 *
 * @module
 */

/** What the bytes so far say. */
export type ClientHelloReading =
  /** More bytes are needed. */
  | { state: "incomplete" }
  /** A whole ClientHello: the server name asked for (undefined without SNI), and how many bytes its records took. */
  | { state: "complete"; serverName: string | undefined; bytes: number; encryptedClientHello: boolean }
  /** Not a ClientHello this reader takes, with why. */
  | { state: "refused"; reason: string };

/** The largest ClientHello accepted: far above real ones (a few KiB with post-quantum key shares), small enough to bound what a client makes the proxy hold. */
export const MAX_CLIENT_HELLO = 64 * 1024;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
/** draft-ietf-tls-esni: the outer ClientHello's SNI is then the client-facing server's public name. */
const EXTENSION_ENCRYPTED_CLIENT_HELLO = 0xfe0d;
const NAME_TYPE_HOST_NAME = 0;
/** RFC 1035 §2.3.4: 253 characters without the trailing dot. */
const MAX_HOST_NAME = 253;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

class Refusal extends Error {}

/** A cursor over a byte range whose reads never pass its end. */
class Reader {
  readonly #bytes: Buffer;
  #at: number;
  readonly #end: number;

  constructor(bytes: Buffer, at = 0, end = bytes.length) {
    this.#bytes = bytes;
    this.#at = at;
    this.#end = end;
  }

  get remaining(): number {
    return this.#end - this.#at;
  }

  #need(n: number, what: string): void {
    if (this.remaining < n) throw new Refusal(`${what} runs past the end of its enclosing structure`);
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#bytes[this.#at++] as number;
  }

  u16(what: string): number {
    this.#need(2, what);
    const value = this.#bytes.readUInt16BE(this.#at);
    this.#at += 2;
    return value;
  }

  u24(what: string): number {
    this.#need(3, what);
    const value = this.#bytes.readUIntBE(this.#at, 3);
    this.#at += 3;
    return value;
  }

  skip(n: number, what: string): void {
    this.#need(n, what);
    this.#at += n;
  }

  /** A sub-reader over the next `n` bytes, which this one skips. */
  sub(n: number, what: string): Reader {
    this.#need(n, what);
    const sub = new Reader(this.#bytes, this.#at, this.#at + n);
    this.#at += n;
    return sub;
  }

  text(n: number, what: string): string {
    this.#need(n, what);
    const value = this.#bytes.toString("latin1", this.#at, this.#at + n);
    this.#at += n;
    return value;
  }

  /** The structure must have been read to its end exactly. */
  end(what: string): void {
    if (this.remaining !== 0) throw new Refusal(`${what} has ${this.remaining} bytes after its last field`);
  }
}

/** Why `name` is not a host name SNI may carry (RFC 6066 §3), or undefined when it is one. */
export function hostNameProblem(name: string): string | undefined {
  if (name.length === 0) return "an empty host name";
  if (name.length > MAX_HOST_NAME) return `a host name of ${name.length} characters, more than ${MAX_HOST_NAME}`;
  if (name.endsWith(".")) return "a host name with a trailing dot";
  if (/^[0-9.]+$/.test(name) || name.includes(":")) return "an IP address, which SNI may not carry";
  if (!name.split(".").every((label) => LABEL.test(label))) return `"${name}" is not a DNS host name (letters, digits and '-' in labels of 1 to 63)`;
  return undefined;
}

/** Where a whole record ends in the connection's bytes, and how many handshake bytes the records up to it carried. */
interface RecordEnd {
  end: number;
  handshakeBytes: number;
}

/** The handshake bytes of the records at the start of `bytes`, as far as they go, or a refusal. */
function handshakeBytes(bytes: Buffer): { body: Buffer; records: RecordEnd[] } {
  const parts: Buffer[] = [];
  const records: RecordEnd[] = [];
  let carried = 0;
  let at = 0;
  // Records are read up to the one ending the ClientHello (its length is in the first 4 handshake bytes); what follows is not ours.
  let target = Infinity;
  while (at + 5 <= bytes.length && carried < target) {
    const type = bytes[at] as number;
    if (type !== RECORD_HANDSHAKE) throw new Refusal(at === 0 ? `not a TLS handshake record (first byte ${type})` : `a record of type ${type} before the ClientHello ended`);
    const major = bytes[at + 1] as number;
    if (major !== 3) throw new Refusal(`record version ${major}.${bytes[at + 2]} is not TLS`);
    const length = bytes.readUInt16BE(at + 3);
    if (length === 0) throw new Refusal("an empty handshake record (RFC 8446 §5.1 forbids them)");
    if (length > 16384) throw new Refusal(`a record of ${length} bytes, more than TLS allows (16384)`);
    if (at + 5 + length > bytes.length) {
      parts.push(bytes.subarray(at + 5));
      break;
    }
    parts.push(bytes.subarray(at + 5, at + 5 + length));
    at += 5 + length;
    carried += length;
    records.push({ end: at, handshakeBytes: carried });
    if (target === Infinity && carried >= 4) target = Buffer.concat(parts).readUIntBE(1, 3) + 4;
  }
  if (bytes.length >= 1 && bytes[0] !== RECORD_HANDSHAKE) throw new Refusal(`not a TLS handshake record (first byte ${bytes[0]})`);
  return { body: Buffer.concat(parts), records };
}

function readExtensions(reader: Reader): { serverName: string | undefined; encryptedClientHello: boolean } {
  const seen = new Set<number>();
  let serverName: string | undefined;
  while (reader.remaining > 0) {
    const type = reader.u16("an extension type");
    const data = reader.sub(reader.u16("an extension length"), `extension ${type}`);
    if (seen.has(type)) throw new Refusal(`extension ${type} appears twice (RFC 8446 §4.2)`);
    seen.add(type);
    if (type !== EXTENSION_SERVER_NAME) continue;
    const list = data.sub(data.u16("the server name list length"), "the server name list");
    data.end("the server_name extension");
    if (list.remaining === 0) throw new Refusal("an empty server name list");
    while (list.remaining > 0) {
      const nameType = list.u8("a server name type");
      const name = list.text(list.u16("a server name length"), "a server name");
      if (nameType !== NAME_TYPE_HOST_NAME) throw new Refusal(`a server name of type ${nameType}, not host_name`);
      if (serverName !== undefined) throw new Refusal("two host_name entries (RFC 6066 §3 allows one)");
      const problem = hostNameProblem(name);
      if (problem) throw new Refusal(`the server name is ${problem}`);
      serverName = name.toLowerCase();
    }
  }
  return { serverName, encryptedClientHello: seen.has(EXTENSION_ENCRYPTED_CLIENT_HELLO) };
}

/**
 * Reads the ClientHello at the start of `bytes` (all the connection's bytes
 * so far).
 */
export function readClientHello(bytes: Buffer): ClientHelloReading {
  try {
    const { body, records } = handshakeBytes(bytes);
    if (body.length < 4) return bytes.length > MAX_CLIENT_HELLO ? { state: "refused", reason: "no ClientHello in the first 64 KiB" } : { state: "incomplete" };
    if (body[0] !== HANDSHAKE_CLIENT_HELLO) throw new Refusal(`handshake message type ${body[0]}, not a ClientHello`);
    const length = body.readUIntBE(1, 3);
    if (length + 4 > MAX_CLIENT_HELLO) throw new Refusal(`a ClientHello of ${length} bytes, more than ${MAX_CLIENT_HELLO}`);
    if (body.length < length + 4) return { state: "incomplete" };
    // The ClientHello must end where a record ends: bytes of another message in its last record would be read by nobody here.
    const last = records.find((record) => record.handshakeBytes >= length + 4);
    if (last === undefined) return { state: "incomplete" };
    if (last.handshakeBytes !== length + 4) throw new Refusal("the ClientHello's last record holds more than the ClientHello");
    const bytesUsed = last.end;
    const hello = new Reader(body, 4, 4 + length);
    const version = hello.u16("the legacy version");
    if (version >> 8 !== 3) throw new Refusal(`ClientHello version ${version >> 8}.${version & 0xff} is not TLS`);
    hello.skip(32, "the random");
    const sessionId = hello.u8("the session id length");
    if (sessionId > 32) throw new Refusal(`a session id of ${sessionId} bytes, more than 32`);
    hello.skip(sessionId, "the session id");
    const suites = hello.u16("the cipher suites length");
    if (suites === 0 || suites % 2 !== 0) throw new Refusal(`a cipher suite list of ${suites} bytes`);
    hello.skip(suites, "the cipher suites");
    const compression = hello.u8("the compression methods length");
    if (compression === 0) throw new Refusal("no compression method");
    hello.skip(compression, "the compression methods");
    // A ClientHello without extensions (TLS 1.2 allows one) asks for no name.
    if (hello.remaining === 0) return { state: "complete", serverName: undefined, bytes: bytesUsed, encryptedClientHello: false };
    const extensions = hello.sub(hello.u16("the extensions length"), "the extensions");
    hello.end("the ClientHello");
    return { state: "complete", bytes: bytesUsed, ...readExtensions(extensions) };
  } catch (error) {
    if (error instanceof Refusal) return { state: "refused", reason: error.message };
    throw error;
  }
}
