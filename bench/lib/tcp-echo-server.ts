/**
 * The connection-rate server, run inside the server pod's network namespace:
 * `node tcp-echo-server.js PORT`. Echoes every byte back on each TCP
 * connection and prints "ready" once listening.
 */
import { createServer } from "node:net";

const port = Number(process.argv[2]);
createServer({ noDelay: true }, (socket) => {
  socket.on("error", () => socket.destroy());
  socket.pipe(socket);
}).listen({ port, host: "0.0.0.0", backlog: 4096 }, () => process.stdout.write("ready\n"));
