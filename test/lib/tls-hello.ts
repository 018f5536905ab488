/**
 * TLS handshake bytes for tests: ClientHellos of our own making (well-formed
 * or not) and records around them.
 *
 * @module
 */
export const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
export const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
export const vec16 = (body: Buffer) => Buffer.concat([u16(body.length), body]);

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(data)]);
}

export function sniExtension(names: [type: number, name: string][]): Buffer {
  return extension(0, vec16(Buffer.concat(names.map(([type, name]) => Buffer.concat([Buffer.from([type]), vec16(Buffer.from(name, "latin1"))])))));
}

/** A ClientHello handshake message (type and length included) with these extensions. */
export function clientHello(extensions: Buffer[] | undefined, options: { version?: number; tail?: Buffer } = {}): Buffer {
  const body = Buffer.concat([
    u16(options.version ?? 0x0303),
    Buffer.alloc(32, 7), // random
    Buffer.from([0]), // no session id
    vec16(Buffer.from([0x13, 0x01, 0x13, 0x02])), // cipher suites
    Buffer.from([1, 0]), // null compression
    ...(extensions === undefined ? [] : [vec16(Buffer.concat(extensions))]),
    options.tail ?? Buffer.alloc(0),
  ]);
  return Buffer.concat([Buffer.from([1]), u24(body.length), body]);
}

/** Handshake bytes cut into records of at most `size` bytes. */
export function records(handshake: Buffer, size = 16384, type = 22): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < handshake.length; at += size) {
    const part = handshake.subarray(at, at + size);
    out.push(Buffer.concat([Buffer.from([type, 3, 1]), u16(part.length), part]));
  }
  return Buffer.concat(out);
}

