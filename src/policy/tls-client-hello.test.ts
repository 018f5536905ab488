import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { clientHello, extension, records, sniExtension, u16, u24, vec16 } from "../../test/lib/tls-hello.ts";
import { MAX_CLIENT_HELLO, readClientHello } from "./tls-client-hello.ts";
import { matchServerName, validateServerNames } from "./tls-server-name.ts";

describe("readClientHello refuses what could be read two ways", () => {
  const named = (name: string) => [sniExtension([[0, name]])];
  const read = (handshake: Buffer) => readClientHello(records(handshake));
  const refused = (reading: ReturnType<typeof readClientHello>, pattern: RegExp) => {
    assert.equal(reading.state, "refused");
    assert.match(reading.state === "refused" ? reading.reason : "", pattern);
  };

  test("a well-formed hello of our own reads, with and without extensions", () => {
    assert.deepEqual(read(clientHello(named("a.example"))), { state: "complete", serverName: "a.example", bytes: records(clientHello(named("a.example"))).length, encryptedClientHello: false });
    assert.equal(read(clientHello(undefined)).state, "complete");
  });

  const cases: [string, () => ReturnType<typeof readClientHello>, RegExp][] = [
    ["not TLS at all (an HTTP request)", () => readClientHello(Buffer.from("GET / HTTP/1.1\r\n\r\n")), /not a TLS handshake record/],
    ["an SSLv2-style hello", () => readClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])), /not a TLS handshake record/],
    ["application data first", () => readClientHello(records(clientHello(named("a.example")), 16384, 23)), /not a TLS handshake record/],
    ["a record version that is not TLS", () => readClientHello(Buffer.from([22, 2, 0, 0, 4, 1, 0, 0, 0])), /not TLS/],
    ["an empty handshake record", () => readClientHello(Buffer.from([22, 3, 1, 0, 0])), /empty handshake record/],
    ["another handshake message", () => read(Buffer.from([2, 0, 0, 0])), /not a ClientHello/],
    ["two host names", () => read(clientHello([sniExtension([[0, "a.example"], [0, "b.example"]])])), /two host_name entries/],
    ["a name type other than host_name", () => read(clientHello([sniExtension([[1, "a.example"]])])), /type 1/],
    ["the server_name extension twice", () => read(clientHello([...named("a.example"), ...named("b.example")])), /appears twice/],
    ["any extension twice", () => read(clientHello([extension(16, Buffer.from([0, 0])), extension(16, Buffer.from([0, 0])), ...named("a.example")])), /appears twice/],
    ["a trailing dot", () => read(clientHello(named("a.example."))), /trailing dot/],
    ["an IP address", () => read(clientHello(named("10.0.0.1"))), /IP address/],
    ["an empty name", () => read(clientHello(named(""))), /empty host name/],
    ["a name with a NUL", () => read(clientHello(named("good.example\u0000evil.example"))), /not a DNS host name/],
    ["non-ASCII bytes", () => read(clientHello(named("bücher.example"))), /not a DNS host name/],
    ["an empty name list", () => read(clientHello([extension(0, vec16(Buffer.alloc(0)))])), /empty server name list/],
    ["a name longer than its list", () => read(clientHello([extension(0, Buffer.concat([u16(7), Buffer.from([0]), u16(50), Buffer.from("a.ex")]))])), /runs past the end/],
    ["bytes after the name list", () => read(clientHello([extension(0, Buffer.concat([vec16(Buffer.concat([Buffer.from([0]), vec16(Buffer.from("a.example"))])), Buffer.from([0])]))])), /bytes after its last field/],
    ["bytes after the extensions", () => read(clientHello(named("a.example"), { tail: Buffer.from([0, 0]) })), /bytes after its last field/],
    ["a ClientHello version that is not TLS", () => read(clientHello(named("a.example"), { version: 0x0200 })), /not TLS/],
    ["another message in the ClientHello's last record", () => readClientHello(records(Buffer.concat([clientHello(named("a.example")), Buffer.from([20, 0, 0, 0])]))), /holds more than the ClientHello/],
    ["a ClientHello larger than the limit", () => readClientHello(Buffer.concat([Buffer.from([22, 3, 1, 0, 4, 1]), u24(MAX_CLIENT_HELLO)])), /more than/],
  ];
  for (const [name, reading, reason] of cases) test(name, () => refused(reading(), reason));
});

describe("tls.serverNames", () => {
  test("exact names and one leading wildcard label, case-insensitively", () => {
    const patterns = ["api.stripe.com", "*.github.com"];
    assert.equal(matchServerName(patterns, "api.stripe.com"), 0);
    assert.equal(matchServerName(patterns, "API.GitHub.com"), 1);
    assert.equal(matchServerName(patterns, "github.com"), -1, "the wildcard needs one more label");
    assert.equal(matchServerName(patterns, "a.b.github.com"), -1, "and exactly one");
    assert.equal(matchServerName(patterns, "evilgithub.com"), -1);
    assert.equal(matchServerName(patterns, undefined), -1, "no SNI matches nothing");
  });

  test("validation names the entry at fault", () => {
    assert.deepEqual(validateServerNames(["*.github.com", "api.stripe.com"], "f"), []);
    assert.deepEqual(validateServerNames(["api.stripe.com.", "*", "a.*.com", "*.com", "10.0.0.1"], "f"), [
      'f[0]: "api.stripe.com." is a host name with a trailing dot',
      'f[1]: "*" is "*" is not a DNS host name (letters, digits and \'-\' in labels of 1 to 63)',
      'f[2]: "a.*.com" is "a.*.com" is not a DNS host name (letters, digits and \'-\' in labels of 1 to 63)',
      'f[3]: "*.com" would match every name under a top-level domain',
      'f[4]: "10.0.0.1" is an IP address, which SNI may not carry',
    ]);
    assert.deepEqual(validateServerNames([], "f"), ["f: must hold at least one server name: an empty list would refuse every connection"]);
  });
});
