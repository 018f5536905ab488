/**
 * The upstream response reader: where each response ends, fed whole and one
 * byte at a time, and every response that could be read two ways refused.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ResponseError, ResponseReader } from "./http1-response.ts";
import type { ResponseHead } from "./http1-response.ts";

interface Read {
  heads: ResponseHead[];
  body: string;
  ends: { trailers: string[]; reusable: boolean }[];
}

/** Expects one response per method, feeding `bytes` in pieces of `step` bytes (0: whole). */
function read(bytes: string, methods: string[], step = 0): Read {
  const reader = new ResponseReader(1024);
  const seen: Read = { heads: [], body: "", ends: [] };
  const queue = [...methods];
  const next = () => {
    const method = queue.shift();
    if (method === undefined) return;
    reader.expect(method, {
      head: (head) => seen.heads.push(head),
      data: (chunk) => (seen.body += chunk.toString("latin1")),
      end: (trailers, reusable) => {
        seen.ends.push({ trailers, reusable });
        next();
      },
    });
  };
  next();
  const buffer = Buffer.from(bytes, "latin1");
  if (step === 0) reader.push(buffer);
  else for (let offset = 0; offset < buffer.length; offset += step) reader.push(buffer.subarray(offset, offset + step));
  return seen;
}

const GOOD: [string, string, string[], Partial<Read> & { reusable: boolean[] }][] = [
  ["a Content-Length body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", ["GET"], { body: "hello", reusable: [true] }],
  ["chunked with extensions and trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d e\"\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", ["GET"], { body: "hello", reusable: [true] }],
  ["a 100 Continue is dropped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", ["POST"], { body: "", reusable: [true] }],
  ["HEAD: no body whatever the length says", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", ["HEAD"], { body: "", reusable: [true] }],
  ["304: no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", ["GET"], { body: "", reusable: [true] }],
  ["Connection: close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", ["GET"], { body: "", reusable: [false] }],
  ["HTTP/1.0 is not reused", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", ["GET"], { body: "ok", reusable: [false] }],
  ["identical Content-Length lines", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", ["GET"], { body: "ok", reusable: [true] }],
];

describe("upstream response reader", () => {
  for (const [name, bytes, methods, expected] of GOOD) {
    for (const step of [0, 1]) {
      test(`${name}${step === 1 ? ", byte by byte" : ""}`, () => {
        const seen = read(bytes, methods, step);
        assert.equal(seen.body, expected.body);
        assert.deepEqual(seen.ends.map((end) => end.reusable), expected.reusable);
      });
    }
  }

  test("a head is given once, fields as received; trailers at the end", () => {
    const seen = read("HTTP/1.1 201 Created\r\nX-A:  spaced \t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Sum: 1\r\n\r\n", ["GET"]);
    assert.deepEqual(seen.heads, [{ version: "1.1", status: 201, reason: "Created", fields: ["X-A", "spaced", "Transfer-Encoding", "chunked"], body: "chunked" }]);
    assert.deepEqual(seen.ends[0]?.trailers, ["X-Sum", "1"]);
  });

  test("a body delimited by the close ends when the server closes, never reused", () => {
    const reader = new ResponseReader(1024);
    const ends: boolean[] = [];
    let body = "";
    reader.expect("GET", { head: () => {}, data: (chunk) => (body += chunk.toString()), end: (_trailers, reusable) => ends.push(reusable) });
    reader.push(Buffer.from("HTTP/1.1 200 OK\r\n\r\nall of it"));
    assert.deepEqual(ends, []);
    reader.close();
    assert.deepEqual(ends, [false]);
    assert.equal(body, "all of it");
  });

  test("a close inside a length-delimited body is an error", () => {
    const reader = new ResponseReader(1024);
    reader.expect("GET", { head: () => {}, data: () => {}, end: () => assert.fail("ended") });
    reader.push(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"));
    assert.throws(() => reader.close(), ResponseError);
  });

  test("bytes after a complete response in its read: dropped, the connection not reused", () => {
    const seen = read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokjunk", ["GET"]);
    assert.equal(seen.body, "ok");
    assert.deepEqual(seen.ends.map((end) => end.reusable), [false]);
  });

  test("bytes while no response is due are an error", () => {
    assert.throws(() => new ResponseReader(1024).push(Buffer.from("HTTP/1.1 200 OK\r\n\r\n")), /no response was due/);
  });

  const HOSTILE: [string, string][] = [
    ["Content-Length with Transfer-Encoding", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"],
    ["Content-Length lines that disagree", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"],
    ["a Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"],
    ["a signed Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"],
    ["a bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"],
    ["a bare CR in a value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n"],
    ["obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"],
    ["whitespace before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"],
    ["a NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n"],
    ["HTTP/2.0 in a status line", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"],
    ["a two-digit status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"],
    ["101 without an upgrade asked", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"],
    ["chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"],
    ["Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
    ["a chunk size that is not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
    ["a chunk size past 2^52", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000\r\n"],
    ["a negative chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"],
    ["chunk data not followed by CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"],
    ["a header block over the limit", `HTTP/1.1 200 OK\r\nX-A: ${"a".repeat(2000)}\r\n\r\n`],
  ];
  for (const [name, bytes] of HOSTILE) {
    for (const step of [0, 1]) {
      test(`refused: ${name}${step === 1 ? ", byte by byte" : ""}`, () => {
        assert.throws(() => read(bytes, ["GET"], step), ResponseError);
      });
    }
  }

  test("each refusal of a head names what is wrong with it", () => {
    const refusal = (head: string) => {
      try {
        read(`${head}\r\n\r\n`, ["GET"]);
      } catch (error) {
        return (error as Error).message;
      }
      return "accepted";
    };
    assert.match(refusal("HTTP/1.1 200 OK\r\nX-A"), /invalid field name/);
    assert.match(refusal("HTTP/1.1 200 OK\r\n: a"), /invalid field name/);
    assert.match(refusal("HTTP/1.1 200 OK\r\nX-A\rB: a"), /bare CR or LF/);
    assert.match(refusal("HTTP/1.1 200 OK\r\nX-A: a\nb"), /bare CR or LF/);
    assert.match(refusal("HTTP/1.1 200 OK\r\nX-A: a\u007fb"), /invalid field value/);
    assert.match(refusal("HTTP/1.1 200 OK\r\n\tX-A: a"), /obs-fold/);
    assert.match(refusal("HTTP/1.1 200 OK\r\nX-A : a"), /invalid field name/);
  });

  test("a long run of spaces in a value costs linear time, and trailing ones are trimmed", () => {
    const seen = read(`HTTP/1.1 200 OK\r\nX-A: a${" ".repeat(900)}\r\nContent-Length: 0\r\n\r\n`, ["GET"]);
    assert.deepEqual(seen.heads[0]?.fields.slice(0, 2), ["X-A", "a"]);
  });
});

describe("a 101 to a request that asked to switch protocols", () => {
  /** Feeds `bytes` (in pieces of `step`) to a reader expecting the answer to an upgrade to `protocol`. */
  function switched(bytes: string, step: number, protocol = "websocket"): { head?: ResponseHead; rest: string; interim: number } {
    const reader = new ResponseReader(1024);
    const seen: { head?: ResponseHead; rest: string; interim: number } = { rest: "", interim: 0 };
    reader.expect("GET", { head: () => seen.interim++, data: () => undefined, end: () => undefined }, {
      protocol,
      switched: (head, rest) => {
        seen.head = head;
        seen.rest = rest.toString("latin1");
      },
    });
    const buffer = Buffer.from(bytes, "latin1");
    for (let offset = 0; offset < buffer.length && seen.head === undefined; offset += step) reader.push(buffer.subarray(offset, offset + step));
    return seen;
  }

  for (const step of [1, 7, 4096]) {
    test(`switches, after a 100, with the new protocol's first bytes as what follows (pieces of ${step})`, () => {
      const bytes = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n\u0081\u0002hi";
      const seen = switched(bytes, step);
      assert.equal(seen.head?.status, 101);
      assert.deepEqual(seen.head?.fields.filter((_, index) => index % 2 === 0), ["Upgrade", "Connection", "Sec-WebSocket-Accept"]);
      assert.equal(seen.interim, 0, "a head was reported as a response");
      // The rest of the piece that ended the head; later pieces are no longer the reader's.
      const headEnd = bytes.lastIndexOf("\r\n\r\n") + 4;
      assert.equal(seen.rest, bytes.slice(headEnd, Math.ceil(headEnd / step) * step));
    });
  }

  test("a non-101 answer is an ordinary response", () => {
    const reader = new ResponseReader(1024);
    const statuses: number[] = [];
    let ended = false;
    reader.expect("GET", { head: (head) => statuses.push(head.status), data: () => undefined, end: () => (ended = true) }, { protocol: "websocket", switched: () => assert.fail("switched") });
    reader.push(Buffer.from("HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno", "latin1"));
    assert.deepEqual(statuses, [426]);
    assert.equal(ended, true);
  });

  const REFUSED: [string, string, RegExp][] = [
    ["to another protocol", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", /to "h2c", not to the websocket asked for/],
    ["to several protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, h2c\r\n\r\n", /to "websocket, h2c"/],
    ["naming no protocol", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", /to ""/],
    ["in two Upgrade lines", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n", /to "websocket, websocket"/],
    ["in HTTP/1.0", "HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", /HTTP\/1\.0/],
  ];
  for (const [name, bytes, message] of REFUSED) {
    test(`a 101 ${name} is refused`, () => {
      assert.throws(() => switched(bytes, 4096), (error: unknown) => error instanceof ResponseError && message.test(error.message));
    });
  }
});
