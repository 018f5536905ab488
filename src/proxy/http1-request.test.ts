/**
 * The client request reader: heads, bodies and where each request ends, fed
 * whole and one byte at a time; every request that could be read two ways
 * refused with a reason, first bytes that are not HTTP told apart, and the
 * shared message reading (http1-message.ts) checked through it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { RequestError, RequestReader } from "./http1-request.ts";
import type { RequestHead } from "./http1-request.ts";

interface Read {
  heads: RequestHead[];
  /** Each request's body, unframed. */
  bodies: string[];
  ends: number;
}

/** Reads `bytes` in pieces of `step` bytes (0: whole); the reader and what it reported. */
function read(bytes: string, step = 0, maxHeaderSize = 1024): Read {
  const seen: Read = { heads: [], bodies: [], ends: 0 };
  const reader = new RequestReader(maxHeaderSize, {
    head: (head) => {
      seen.heads.push(head);
      seen.bodies.push("");
    },
    data: (chunk) => (seen.bodies[seen.bodies.length - 1] += chunk.toString("latin1")),
    end: () => seen.ends++,
  });
  const buffer = Buffer.from(bytes, "latin1");
  if (step === 0) reader.push(buffer);
  else for (let offset = 0; offset < buffer.length; offset += step) reader.push(buffer.subarray(offset, offset + step));
  return seen;
}

/** The refusal of `bytes` fed whole and byte by byte (the same), or "accepted". */
function refusal(bytes: string): { message: string; notHttp: boolean } | "accepted" {
  const outcomes = [0, 1].map((step) => {
    try {
      read(bytes, step);
    } catch (error) {
      assert.ok(error instanceof RequestError, String(error));
      return { message: error.message, notHttp: error.notHttp };
    }
    return "accepted" as const;
  });
  assert.deepEqual(outcomes[1], outcomes[0], "fed byte by byte, the request is refused alike");
  return outcomes[0]!;
}

const GOOD: [string, string, { heads: Partial<RequestHead>[]; bodies: string[] }][] = [
  ["a GET", "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n", { heads: [{ method: "GET", target: "/a?b=c", version: "1.1", fields: ["Host", "x"], body: "none" }], bodies: [""] }],
  ["optional whitespace trimmed, names as received", "GET / HTTP/1.0\r\nhOST: \t x y \t\r\n\r\n", { heads: [{ version: "1.0", fields: ["hOST", "x y"] }], bodies: [""] }],
  ["a Content-Length body", "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", { heads: [{ body: "length" }], bodies: ["hello"] }],
  ["Content-Length: 0 is no body", "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", { heads: [{ body: "none" }], bodies: [""] }],
  [
    "chunked with extensions and a trailer section: both checked and dropped",
    "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;a=b;c=\"d e\"\r\nhello\r\n001 ; x\r\n!\r\n0\r\nX-Sum: 1\r\n\r\n",
    { heads: [{ body: "chunked" }], bodies: ["hello!"] },
  ],
  [
    "pipelined requests, one after the other, empty lines between them skipped",
    "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
    { heads: [{ target: "/1" }, { target: "/2" }, { target: "/3" }], bodies: ["", "ok", ""] },
  ],
  ["a field value with obs-text and inner whitespace", "GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\u00e9  au\tlait\r\n\r\n", { heads: [{ fields: ["Host", "x", "X-A", "caf\u00e9  au\tlait"] }], bodies: [""] }],
  ["an empty field value", "GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n", { heads: [{ fields: ["Host", "x", "X-Empty", ""] }], bodies: [""] }],
];

describe("client request reader", () => {
  for (const [name, bytes, expected] of GOOD) {
    for (const step of [0, 1]) {
      test(`${name}${step === 1 ? ", byte by byte" : ""}`, () => {
        const seen = read(bytes, step);
        assert.equal(seen.heads.length, expected.heads.length);
        expected.heads.forEach((head, index) => {
          for (const [key, value] of Object.entries(head)) assert.deepEqual(seen.heads[index]![key as keyof RequestHead], value, key);
        });
        assert.deepEqual(seen.bodies, expected.bodies);
        assert.equal(seen.ends, expected.heads.length);
      });
    }
  }

  test("state: idle between requests, head while one is incomplete, body while its body comes", () => {
    const reader = new RequestReader(1024, { head: () => {}, data: () => {}, end: () => {} });
    assert.equal(reader.state, "idle");
    reader.push(Buffer.from("POST / HTTP/1.1\r\nHost: x\r\n"));
    assert.equal(reader.state, "head");
    reader.push(Buffer.from("Content-Length: 3\r\n\r\na"));
    assert.equal(reader.state, "body");
    assert.equal(reader.requests, 1);
    reader.push(Buffer.from("bc"));
    assert.equal(reader.state, "idle");
  });

  test("paused in a head, the bytes after it are held, and read once resumed", () => {
    const targets: string[] = [];
    const reader = new RequestReader(1024, {
      head: (head) => {
        targets.push(head.target);
        if (head.target === "/stop") reader.pause();
      },
      data: () => {},
      end: () => {},
    });
    reader.push(Buffer.from("GET /stop HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.deepEqual(targets, ["/stop"]);
    assert.equal(reader.buffered, 31);
    reader.resume();
    assert.deepEqual(targets, ["/stop", "/next"]);
    assert.equal(reader.buffered, 0);
  });

  // Each: a request a server could read another way than the proxy, or that breaks HTTP/1.1; the reason it gets.
  const HOSTILE: [string, string, RegExp][] = [
    ["Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", /both Transfer-Encoding and Content-Length/],
    ["Transfer-Encoding then Content-Length", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", /both/],
    ["two equal Content-Length lines", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", /more than one Content-Length/],
    ["a Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx", /invalid Content-Length/],
    ["a signed Content-Length", "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", /invalid Content-Length/],
    ["a Content-Length past 15 digits", "POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n", /invalid Content-Length/],
    ["an empty Content-Length", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", /invalid Content-Length/],
    ["chunked not last", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", /chunked applied more than once, or not last/],
    ["no chunked at all", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", /does not end in chunked/],
    ["a coding that only contains chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", /does not end in chunked/],
    ["chunked on two lines", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", /more than once/],
    ["Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", /HTTP\/1\.0/],
    ["HTTP/2.0 in a request line", "GET / HTTP/2.0\r\n\r\n", /HTTP version 2\.0/],
    ["HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", /HTTP version 1\.2/],
    // After a first request: as first bytes of a connection they are not HTTP (below).
    ["a lower-case version", "GET / HTTP/1.1\r\n\r\nGET / http/1.1\r\n\r\n", /invalid request line/],
    ["two spaces after the method", "GET  / HTTP/1.1\r\n\r\n", /invalid request line/],
    ["a space in the target", "GET /a b HTTP/1.1\r\n\r\n", /invalid request line/],
    ["a NUL in the target", "GET /a\u0000b HTTP/1.1\r\n\r\n", /invalid request line/],
    ["a raw non-ASCII byte in the target", "GET /caf\u00e9 HTTP/1.1\r\n\r\n", /invalid request line/],
    ["a tab in the request line", "GET / HTTP/1.1\r\n\r\nGET\t/ HTTP/1.1\r\n\r\n", /invalid request line/],
    ["bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n", /bare CR or LF/],
    ["a bare CR in a value", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", /bare CR or LF/],
    ["a bare LF in a value", "GET / HTTP/1.1\r\nX: a\nb\r\n\r\n", /bare CR or LF/],
    ["obs-fold", "GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", /obs-fold/],
    ["whitespace before the colon", "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", /invalid field name/],
    ["a space in a field name", "GET / HTTP/1.1\r\nX Y: z\r\n\r\n", /invalid field name/],
    ["a line without a colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", /invalid field name/],
    ["an empty field name", "GET / HTTP/1.1\r\n: x\r\n\r\n", /invalid field name/],
    ["a NUL in a value", "GET / HTTP/1.1\r\nX-A: a\u0000b\r\n\r\n", /invalid field value/],
    ["DEL in a value", "GET / HTTP/1.1\r\nX-A: a\u007fb\r\n\r\n", /invalid field value/],
    ["a header block over the bound", `GET / HTTP/1.1\r\nX-Big: ${"b".repeat(1100)}\r\n\r\n`, /header block too large/],
    ["a chunk size past 2^52", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nx\r\n", /chunk size too large/],
    ["a chunk size that is not hex", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", /invalid chunk-size line/],
    ["a negative chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", /invalid chunk-size line/],
    ["whitespace before a chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 1\r\nx\r\n", /invalid chunk-size line/],
    ["a bare LF after a chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n", /invalid chunk-size line/],
    ["a chunk extension that is not a token", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a b\r\nx\r\n0\r\n\r\n", /invalid chunk-size line/],
    ["an unterminated quoted extension", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\"b\r\nx\r\n0\r\n\r\n", /invalid chunk-size line/],
    ["chunk data longer than its size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", /chunk data not followed by CRLF/],
    ["a chunk-size line past its bound", `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a=${"b".repeat(5000)}`, /chunk-size line too long/],
    ["Content-Length in the trailer section", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", /Content-Length in the trailer section/],
    ["Transfer-Encoding in the trailer section", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", /Transfer-Encoding in the trailer section/],
    ["Host in the trailer section", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nhost: evil\r\n\r\n", /host in the trailer section/],
    ["obs-fold in the trailer section", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", /obs-fold in the trailer section/],
    ["a trailer section over the bound", `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ${"a".repeat(1100)}\r\n\r\n`, /trailer section too large/],
  ];
  for (const [name, bytes, reason] of HOSTILE) {
    test(`refused: ${name}`, () => {
      const outcome = refusal(bytes);
      assert.notEqual(outcome, "accepted");
      if (outcome === "accepted") return;
      assert.match(outcome.message, reason);
      assert.equal(outcome.notHttp, false);
    });
  }

  test("a refused request after a good one is refused as HTTP, not as bytes that are not HTTP", () => {
    const outcome = refusal("GET / HTTP/1.1\r\nHost: x\r\n\r\nhello world\r\n\r\n");
    assert.deepEqual(outcome, { message: "invalid request line", notHttp: false });
  });

  const NOT_HTTP: [string, string][] = [
    ["a TLS ClientHello", "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000"],
    ["a line of words", "hello world\r\n\r\n"],
    ["an SSH banner", "SSH-2.0-OpenSSH_9.2\r\n"],
    ["a leading space", " GET / HTTP/1.1\r\n\r\n"],
    ["a method alone", "QUIT\r\n\r\n"],
    ["a lower-case version", "GET / http/1.1\r\n\r\n"],
    ["a tab after the method", "GET\t/ HTTP/1.1\r\n\r\n"],
  ];
  for (const [name, bytes] of NOT_HTTP) {
    test(`not HTTP: ${name}`, () => {
      const outcome = refusal(bytes);
      assert.notEqual(outcome, "accepted");
      if (outcome !== "accepted") assert.equal(outcome.notHttp, true, outcome.message);
    });
  }

  test("not HTTP is told by the first bytes, before a line ends", () => {
    const reader = new RequestReader(1024, { head: () => {}, data: () => {}, end: () => {} });
    assert.throws(() => reader.push(Buffer.from([0x16, 0x03, 0x01])), (error: unknown) => error instanceof RequestError && error.notHttp);
  });

  test("a bare LF is refused when it arrives, before the header block ends", () => {
    const reader = new RequestReader(1024, { head: () => {}, data: () => {}, end: () => {} });
    reader.push(Buffer.from("GET / HTTP/1.1\r\nX: a\r"));
    assert.throws(() => reader.push(Buffer.from("b")), /bare CR or LF/);
  });
});
