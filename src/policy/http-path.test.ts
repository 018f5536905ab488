import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { normalizePath, parseRequestTarget, removeDotSegments, serverReadings } from "./http-path.ts";
import { parseHost, sameAuthority } from "./http-host.ts";

// [raw path, normalized path | refusal reason prefix]. A refusal is written "!reason".
const PATHS: [string, string][] = [
  // Dot segments, plain and encoded in every case; RFC 3986 §5.2.4 clamps ".." at the root.
  ["/public/../admin", "/admin"],
  ["/public/%2e%2e/admin", "/admin"],
  ["/public/%2E%2E/admin", "/admin"],
  ["/public/.%2e/admin", "/admin"],
  ["/public/%2e./admin", "/admin"],
  ["/public/./admin", "/public/admin"],
  ["/public/%2e/admin", "/public/admin"],
  ["/public/..", "/"],
  ["/public/.", "/public/"],
  ["/public/%2e", "/public/"],
  ["/..", "/"],
  ["/../../etc/passwd", "/etc/passwd"],
  ["/a/b/c/./../../g", "/a/g"],
  ["/mid/content=5/../6", "/mid/6"],
  ["/a/...", "/a/..."],
  ["/a/.../b", "/a/.../b"],
  ["/.well-known/x", "/.well-known/x"],
  // Empty segments are kept (RFC 3986 gives them meaning), and ".." removes only the one before it.
  ["//", "//"],
  ["/a//b", "/a//b"],
  ["/a//../b", "/a/b"],
  ["/public//../admin", "/public/admin"],
  // Trailing dots of a name are part of it: "/admin." is not "/admin" (some servers strip them; rules should use prefixes).
  ["/admin.", "/admin."],
  ["/admin..", "/admin.."],
  // Unreserved characters are decoded, other escapes get upper-case hex.
  ["/%7Euser", "/~user"],
  ["/%7euser", "/~user"],
  ["/%41%42c", "/ABc"],
  ["/a%2db%5fc", "/a-b_c"],
  ["/a%3fb", "/a%3Fb"],
  ["/a%3Fb", "/a%3Fb"],
  ["/a%20b", "/a%20b"],
  ["/caf%c3%a9", "/caf%C3%A9"],
  ["/%F0%9F%98%80", "/%F0%9F%98%80"],
  ["/a%25b", "/a%25b"],
  // Parameters are part of a segment, but a dot segment with parameters is what Tomcat reads as "..".
  ["/a;x=1/b", "/a;x=1/b"],
  ["/public/..;/admin", "!dot segment with parameters"],
  ["/public/.;x/admin", "!dot segment with parameters"],
  ["/public/%2e%2e;/admin", "!dot segment with parameters"],
  ["/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="],
  // Encoded separators and backslashes: servers split on them or not.
  ["/public%2F..%2Fadmin", "!encoded slash"],
  ["/public/%2f", "!encoded slash"],
  ["/public\\..\\admin", "!backslash"],
  ["/public/%5c../admin", "!encoded backslash"],
  // Double encodings decode to an escape: a second decoding pass reads them as characters.
  ["/public/%252e%252e/admin", "!double percent-encoding"],
  ["/a/%25%32%65", "!double percent-encoding"],
  ["/a/%252F", "!double percent-encoding"],
  // Malformed escapes.
  ["/a%", "!malformed percent-encoding"],
  ["/a%2", "!malformed percent-encoding"],
  ["/a%zz", "!malformed percent-encoding"],
  ["/a%%32e", "!malformed percent-encoding"],
  // Not UTF-8: overlong dots and slashes (read as "." and "/" by old decoders), lone continuation bytes, surrogates.
  ["/public/%C0%AE%C0%AE/admin", "!percent-encoded bytes that are not UTF-8"],
  ["/%c0%af", "!percent-encoded bytes that are not UTF-8"],
  ["/%E0%80%AE", "!percent-encoded bytes that are not UTF-8"],
  ["/%80", "!percent-encoded bytes that are not UTF-8"],
  ["/%ED%A0%80", "!percent-encoded bytes that are not UTF-8"],
  ["/%C3", "!percent-encoded bytes that are not UTF-8"],
  ["/%F4%90%80%80", "!percent-encoded bytes that are not UTF-8"],
  // Control characters, NUL, raw non-ASCII, and characters RFC 3986 keeps out of paths.
  ["/a\u0000b", "!NUL byte"],
  ["/a%00b", "!encoded control character"],
  ["/a%0d%0ab", "!encoded control character"],
  ["/a%7f", "!encoded control character"],
  ["/a\tb", "!control character"],
  ["/a b", "!space"],
  ["/café", "!non-ASCII byte"],
  ["/\u00c3\u00a9", "!non-ASCII byte"],
  ["/a<b>", "!character"],
  ["/a|b", "!character"],
  ["/a{b}", "!character"],
  ["/a[0]", "!character"],
  ["/a\"b", "!character"],
  // A path must start with "/".
  ["", "!path does not start with /"],
  ["admin", "!path does not start with /"],
  ["%2Fadmin", "!path does not start with /"],
];

describe("normalizePath", () => {
  for (const [raw, expected] of PATHS) {
    test(`${JSON.stringify(raw)} → ${expected}`, () => {
      const result = normalizePath(raw);
      if (expected.startsWith("!")) {
        assert.equal(result.ok, false, `expected a refusal, got ${JSON.stringify(result)}`);
        if (!result.ok) assert.ok(result.reason.startsWith(expected.slice(1)), `reason ${JSON.stringify(result.reason)}`);
      } else {
        assert.deepEqual(result, { ok: true, path: expected });
      }
    });
  }

  test("normalizing twice changes nothing", () => {
    for (const [raw] of PATHS) {
      const once = normalizePath(raw);
      if (once.ok) assert.deepEqual(normalizePath(once.path), once, raw);
    }
  });
});

describe("removeDotSegments", () => {
  // RFC 3986 §5.2.4's own worked examples.
  test("the RFC's examples", () => {
    assert.equal(removeDotSegments("/a/b/c/./../../g"), "/a/g");
    assert.equal(removeDotSegments("mid/content=5/../6"), "mid/6");
  });
});

describe("serverReadings", () => {
  test("repeated slashes merged, and ;parameters dropped before merging; none for a plain path", () => {
    assert.deepEqual(serverReadings("/public/a"), []);
    assert.deepEqual(serverReadings("//admin"), ["/admin"]);
    assert.deepEqual(serverReadings("/a///b/"), ["/a/b/"]);
    assert.deepEqual(serverReadings("/;x/admin"), ["/admin"]);
    assert.deepEqual(serverReadings("/admin;v=1"), ["/admin"]);
    assert.deepEqual(serverReadings("//admin;v=1/users/;x"), ["/admin;v=1/users/;x", "/admin/users/"]);
    assert.deepEqual(serverReadings("/a;b=c/d;e"), ["/a/d"]);
    assert.deepEqual(serverReadings("*"), []);
  });
});

describe("parseRequestTarget", () => {
  test("origin form splits off the query, which is checked but not normalized", () => {
    assert.deepEqual(parseRequestTarget("/a/%7e/../b?x=%7e&y=/z?", "GET"), { ok: true, form: "origin", path: "/a/b", query: "x=%7e&y=/z?", authority: undefined });
    assert.deepEqual(parseRequestTarget("/a?", "GET"), { ok: true, form: "origin", path: "/a", query: "", authority: undefined });
  });

  test("a query with what RFC 3986 forbids is refused", () => {
    assert.equal(parseRequestTarget("/a?x=%zz", "GET").ok, false);
    assert.equal(parseRequestTarget("/a?x=\u00e9", "GET").ok, false);
    assert.equal(parseRequestTarget("/a?x=a b", "GET").ok, false);
  });

  test("a fragment is invalid in a request target", () => {
    assert.deepEqual(parseRequestTarget("/a#frag", "GET"), { ok: false, reason: "fragment (#) in request target" });
    assert.deepEqual(parseRequestTarget("/a?x#frag", "GET"), { ok: false, reason: "fragment (#) in request target" });
  });

  test("absolute form gives its authority and an origin-form path", () => {
    assert.deepEqual(parseRequestTarget("http://API.shop:8080/public/../admin?q", "GET"), { ok: true, form: "absolute", path: "/admin", query: "q", authority: "API.shop:8080" });
    assert.deepEqual(parseRequestTarget("HTTP://api.shop", "GET"), { ok: true, form: "absolute", path: "/", query: undefined, authority: "api.shop" });
    assert.deepEqual(parseRequestTarget("http://api.shop?x", "GET"), { ok: true, form: "absolute", path: "/", query: "x", authority: "api.shop" });
  });

  test("absolute form with another scheme, userinfo or no authority is refused", () => {
    assert.equal(parseRequestTarget("https://api.shop/", "GET").ok, false);
    assert.equal(parseRequestTarget("http://user@api.shop/", "GET").ok, false);
    assert.equal(parseRequestTarget("http:///admin", "GET").ok, false);
    assert.equal(parseRequestTarget("api.shop/admin", "GET").ok, false);
  });

  test("asterisk form only for OPTIONS; authority form (CONNECT) never", () => {
    assert.deepEqual(parseRequestTarget("*", "OPTIONS"), { ok: true, form: "asterisk", path: "*", query: undefined, authority: undefined });
    assert.equal(parseRequestTarget("*", "GET").ok, false);
    assert.equal(parseRequestTarget("api.shop:443", "CONNECT").ok, false);
    assert.equal(parseRequestTarget("/a", "CONNECT").ok, false);
  });
});

describe("parseHost", () => {
  test("lower case, port apart, IPv6 literals keep brackets", () => {
    assert.deepEqual(parseHost("API.Shop:8080"), { ok: true, host: "api.shop", port: 8080 });
    assert.deepEqual(parseHost("api.shop"), { ok: true, host: "api.shop", port: undefined });
    assert.deepEqual(parseHost("api.shop:"), { ok: true, host: "api.shop", port: undefined });
    assert.deepEqual(parseHost("[FD00::1]:80"), { ok: true, host: "[fd00::1]", port: 80 });
    assert.deepEqual(parseHost("10.0.0.1"), { ok: true, host: "10.0.0.1", port: undefined });
  });

  test("what is not a host, or reads two ways, is refused", () => {
    for (const value of ["", ":80", "a.shop.", "user@a.shop", "a%2eshop", "a shop", "a/b", "a.shop:99999", "a.shop:8x", "[::1", "[zz::1]", "a\u00e9.shop"]) {
      assert.equal(parseHost(value).ok, false, JSON.stringify(value));
    }
  });

  test("same authority: port 80 by default, case-insensitive", () => {
    const host = (value: string) => {
      const parsed = parseHost(value);
      assert.ok(parsed.ok);
      return parsed;
    };
    assert.ok(sameAuthority(host("API.shop"), host("api.shop:80")));
    assert.ok(!sameAuthority(host("api.shop"), host("api.shop:8080")));
    assert.ok(!sameAuthority(host("api.shop"), host("evil.shop")));
  });
});
