import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { endToEndFields, framingFieldNamedByConnection, readFieldLines } from "./hop-by-hop.ts";
import { sniffProtocol } from "./http-front.ts";

describe("endToEndFields", () => {
  test("drops Connection, what it names (any case, any spacing) and the fields hop-by-hop by definition; keeps order and the rest", () => {
    const raw = ["Host", "a", "connection", "Keep-Alive ,x-trace,,  X-Other", "X-Trace", "1", "x-other", "2", "Keep-Alive", "timeout=5", "TE", "trailers", "Upgrade", "h2c", "Proxy-Connection", "close", "Expect", "100-continue", "Transfer-Encoding", "chunked", "Accept", "*/*", "Accept", "text/html"];
    assert.deepEqual(endToEndFields(readFieldLines(raw)), ["Host", "a", "Transfer-Encoding", "chunked", "Accept", "*/*", "Accept", "text/html"]);
  });

  test("without a Connection line only the fields hop-by-hop by definition go", () => {
    assert.deepEqual(endToEndFields(readFieldLines(["Host", "a", "Keep-Alive", "timeout=5", "X-Trace", "1"])), ["Host", "a", "X-Trace", "1"]);
  });
});

describe("framingFieldNamedByConnection", () => {
  test("names Content-Length, Transfer-Encoding or Host when a Connection line lists them", () => {
    const named = (raw: string[]) => framingFieldNamedByConnection(readFieldLines(raw));
    assert.equal(named(["Connection", "keep-alive, Content-Length"]), "content-length");
    assert.equal(named(["Connection", "close", "connection", "transfer-encoding"]), "transfer-encoding");
    assert.equal(named(["Connection", "HOST"]), "host");
    assert.equal(named(["Connection", "keep-alive, x-trace", "Content-Length", "3"]), undefined);
  });
});

describe("sniffProtocol", () => {
  const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  test("HTTP/2 only on the whole preface; undecided on a prefix of it; HTTP/1 on the first differing byte", () => {
    assert.equal(sniffProtocol(Buffer.from(preface)), "http2");
    assert.equal(sniffProtocol(Buffer.from(`${preface}\u0000\u0000\u0012\u0004`)), "http2");
    for (let length = 1; length < preface.length; length++) assert.equal(sniffProtocol(Buffer.from(preface.slice(0, length))), undefined, String(length));
    assert.equal(sniffProtocol(Buffer.from("POST / HTTP/1.1")), "http1");
    assert.equal(sniffProtocol(Buffer.from("PRI * HTTP/1.1\r\n")), "http1");
    assert.equal(sniffProtocol(Buffer.from("\u0016\u0003\u0001")), "http1");
  });
});
