/**
 * Bulk bytes both ways over a connection for tests of what passes it on: each
 * end sends filler bytes and the call waits until the other end has them all,
 * so that what a relay between them has passed is known exactly.
 *
 * @module
 */
import type { Socket } from "node:net";

/** Resolves once `socket` has received `size` more bytes (at once for none). */
export function receiveBytes(socket: Socket, size: number): Promise<void> {
  let got = 0;
  return new Promise((resolve) => {
    if (size === 0) return resolve();
    const onData = (chunk: Buffer) => {
      got += chunk.length;
      if (got < size) return;
      socket.off("data", onData);
      resolve();
    };
    socket.on("data", onData);
  });
}

/** Sends `up` bytes from `client` and `down` from `server`, and resolves once each has arrived at the other. */
export async function exchangeBytes(client: Socket, server: Socket, up: number, down: number): Promise<void> {
  const arrived = Promise.all([receiveBytes(server, up), receiveBytes(client, down)]);
  if (up > 0) client.write(Buffer.alloc(up, 1));
  if (down > 0) server.write(Buffer.alloc(down, 2));
  await arrived;
}
