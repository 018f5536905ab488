import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { HttpRule } from "./api-types.ts";
import type { HttpRequestView } from "./http-rule.ts";
import { compileHttpRules, validateHttpRules } from "./http-rule.ts";

function request(parts: Partial<Omit<HttpRequestView, "headers">> & { headers?: [string, string][] } = {}): HttpRequestView {
  const headers = new Map<string, string[]>();
  for (const [name, value] of parts.headers ?? []) headers.set(name, [...(headers.get(name) ?? []), value]);
  return { method: parts.method ?? "GET", path: parts.path ?? "/", host: "host" in parts ? parts.host : "api.shop", headers };
}

const FIELD = "spec.ingress[0].http";

describe("validateHttpRules", () => {
  test("the issue's example is valid", () => {
    const rules = [
      { method: "GET", path: { prefix: "/public/" } },
      { method: "POST", path: { exact: "/orders" }, host: { exact: "api.shop" }, headers: [{ name: "X-Tenant", exact: "blue" }] },
      { path: { prefix: "/admin" } },
      { path: { regex: "/pkg\\.Service/[A-Za-z]+" }, host: { suffix: "shop" }, headers: [{ name: "te", present: true }, { name: "x-debug", absent: true }, { name: "accept", regex: ".*json.*" }, { name: "user-agent", prefix: "curl/" }] },
      {},
    ];
    assert.deepEqual(validateHttpRules(rules, FIELD), []);
  });

  // [rules, expected messages (each a prefix of one error, in order)]
  const INVALID: [unknown, string[]][] = [
    [{}, [`${FIELD}: must be a list of HTTP rules, not an object`]],
    [[], [`${FIELD}: must hold at least one HTTP rule`]],
    [Array.from({ length: 65 }, () => ({})), [`${FIELD}: holds 65 HTTP rules, more than the limit of 64`]],
    [["GET"], [`${FIELD}[0]: must be an object, not "GET"`]],
    [[{ verb: "GET" }], [`${FIELD}[0].verb: is not a field of this object`]],
    [[{ method: "GE T" }], [`${FIELD}[0].method: "GE T" is not an HTTP method`]],
    [[{ method: "G".repeat(33) }], [`${FIELD}[0].method: is 33 characters long, more than the limit of 32`]],
    [[{ method: 1 }], [`${FIELD}[0].method: must be a string, not 1`]],
    [[{ path: {} }], [`${FIELD}[0].path: must set one of exact, prefix, regex`]],
    [[{ path: { exact: "/a", prefix: "/a" } }], [`${FIELD}[0].path: sets exact and prefix: it must set exactly one`]],
    [[{ path: { prefix: "public/" } }], [`${FIELD}[0].path.prefix: "public/" does not start with "/"`]],
    [[{ path: { prefix: "/public/../admin" } }], [`${FIELD}[0].path.prefix: "/public/../admin" is not in normalized form, so it could never match a normalized path: write "/admin"`]],
    [[{ path: { exact: "/%7euser" } }], [`${FIELD}[0].path.exact: "/%7euser" is not in normalized form`]],
    [[{ path: { exact: "/caf%c3%a9" } }], [`${FIELD}[0].path.exact: "/caf%c3%a9" is not in normalized form, so it could never match a normalized path: write "/caf%C3%A9"`]],
    [[{ path: { exact: "/a%2Fb" } }], [`${FIELD}[0].path.exact: "/a%2Fb" is not a path requests can have: encoded slash`]],
    [[{ path: { regex: "(a" } }], [`${FIELD}[0].path.regex: "(a" is not RE2 syntax: error parsing regexp: missing closing )`]],
    [[{ path: { regex: "(?=a)" } }], [`${FIELD}[0].path.regex: "(?=a)" is not RE2 syntax`]],
    [[{ path: { regex: "(a)\\1" } }], [`${FIELD}[0].path.regex: "(a)\\\\1" is not RE2 syntax`]],
    [[{ path: { regex: "a".repeat(1025) } }], [`${FIELD}[0].path.regex: is 1025 characters long`]],
    [[{ host: { exact: "api.shop:8080" } }], [`${FIELD}[0].host.exact: "api.shop:8080" has a port`]],
    [[{ host: { suffix: ".shop" } }], [`${FIELD}[0].host.suffix: ".shop" starts with "."`]],
    [[{ host: { exact: "api shop" } }], [`${FIELD}[0].host.exact: "api shop" is not a host: invalid character in host`]],
    [[{ host: { exact: "api.shop." } }], [`${FIELD}[0].host.exact: "api.shop." is not a host: host with a trailing dot`]],
    [[{ host: { prefix: "api" } }], [`${FIELD}[0].host.prefix: is not a field of this object`, `${FIELD}[0].host: must set one of exact, suffix, regex`]],
    [[{ headers: {} }], [`${FIELD}[0].headers: must be a list, not an object`]],
    [[{ headers: Array.from({ length: 17 }, () => ({ name: "a", present: true })) }], [`${FIELD}[0].headers: holds 17 entries, more than the limit of 16`]],
    [[{ headers: [{ name: "X Tenant", exact: "blue" }] }], [`${FIELD}[0].headers[0].name: "X Tenant" is not a field name`]],
    [[{ headers: [{ name: ":path", exact: "/" }] }], [`${FIELD}[0].headers[0].name: ":path" is not a field name`]],
    [[{ headers: [{ exact: "blue" }] }], [`${FIELD}[0].headers[0].name: must be a string, not nothing`]],
    [[{ headers: [{ name: "x", exact: "blue", present: true }] }], [`${FIELD}[0].headers[0]: sets exact and present`]],
    [[{ headers: [{ name: "x", present: false }] }], [`${FIELD}[0].headers[0].present: must be true, not false`]],
    [[{ headers: [{ name: "x" }] }], [`${FIELD}[0].headers[0]: must set one of exact, prefix, regex, present, absent`]],
    [[{ headers: [{ name: "x", exact: " blue" }] }], [`${FIELD}[0].headers[0].exact: " blue" is not a field value`]],
    [[{ headers: [{ name: "x", prefix: "a\r\nb" }] }], [`${FIELD}[0].headers[0].prefix: "a\\r\\nb" is not a field value`]],
    [[{ headers: [{ name: "x", regex: "[" }] }], [`${FIELD}[0].headers[0].regex: "[" is not RE2 syntax`]],
  ];
  for (const [rules, expected] of INVALID) {
    test(`refuses ${JSON.stringify(rules).slice(0, 80)}`, () => {
      const errors = validateHttpRules(rules, FIELD);
      assert.equal(errors.length, expected.length, JSON.stringify(errors));
      expected.forEach((prefix, index) => assert.ok(errors[index]?.startsWith(prefix), `${JSON.stringify(errors[index])} should start with ${JSON.stringify(prefix)}`));
    });
  }
});

describe("compileHttpRules", () => {
  const match = (rules: HttpRule[], view: HttpRequestView) => compileHttpRules(rules).match(view);

  test("the first rule whose fields all hold, else -1", () => {
    const rules: HttpRule[] = [
      { method: "GET", path: { prefix: "/public/" } },
      { method: "POST", path: { exact: "/orders" }, host: { exact: "api.shop" }, headers: [{ name: "X-Tenant", exact: "blue" }] },
      {},
    ];
    assert.equal(match(rules, request({ path: "/public/a" })), 0);
    assert.equal(match(rules, request({ method: "POST", path: "/orders", headers: [["x-tenant", "blue"]] })), 1);
    assert.equal(match(rules.slice(0, 2), request({ method: "POST", path: "/orders", headers: [["x-tenant", "red"]] })), -1);
    assert.equal(match(rules.slice(0, 2), request({ method: "get", path: "/public/a" })), -1, "methods are case-sensitive");
    assert.equal(match(rules.slice(0, 2), request({ path: "/public" })), -1);
    assert.equal(match(rules, request({ method: "DELETE" })), 2, "an empty rule matches every request");
  });

  test("path regexes match the whole path, in linear time", () => {
    const rules: HttpRule[] = [{ path: { regex: "/api/v[0-9]+" } }];
    assert.equal(match(rules, request({ path: "/api/v2" })), 0);
    assert.equal(match(rules, request({ path: "/api/v2/x" })), -1);
    assert.equal(match(rules, request({ path: "/x/api/v2" })), -1);
    // Catastrophic for a backtracking engine; RE2 answers in time linear in the input.
    assert.equal(match([{ path: { regex: "/(a+)+b" } }], request({ path: `/${"a".repeat(5000)}` })), -1);
  });

  test("hosts: case-insensitive, suffix by whole labels, regex case-insensitive", () => {
    assert.equal(match([{ host: { exact: "API.Shop" } }], request({ host: "api.shop" })), 0);
    const suffix: HttpRule[] = [{ host: { suffix: "Shop.example" } }];
    assert.equal(match(suffix, request({ host: "shop.example" })), 0);
    assert.equal(match(suffix, request({ host: "api.shop.example" })), 0);
    assert.equal(match(suffix, request({ host: "evilshop.example" })), -1);
    assert.equal(match(suffix, request({ host: undefined })), -1);
    assert.equal(match([{ host: { regex: "API\\.[a-z]+" } }], request({ host: "api.shop" })), 0);
    assert.equal(match([{ host: { regex: "api" } }], request({ host: "api.shop" })), -1);
  });

  test("headers: all must hold; several lines are one value joined by \", \" (Cookie by \"; \")", () => {
    const tenant: HttpRule[] = [{ headers: [{ name: "x-tenant", exact: "blue" }] }];
    assert.equal(match(tenant, request({ headers: [["x-tenant", "blue"]] })), 0);
    assert.equal(match(tenant, request({ headers: [["x-tenant", "blue"], ["x-tenant", "red"]] })), -1);
    assert.equal(match([{ headers: [{ name: "X-Tenant", exact: "blue, red" }] }], request({ headers: [["x-tenant", "blue"], ["x-tenant", "red"]] })), 0);
    assert.equal(match([{ headers: [{ name: "cookie", exact: "a=1; b=2" }] }], request({ headers: [["cookie", "a=1"], ["cookie", "b=2"]] })), 0);
    assert.equal(match([{ headers: [{ name: "x-tenant", prefix: "bl" }] }], request({ headers: [["x-tenant", "blue"]] })), 0);
    assert.equal(match([{ headers: [{ name: "x-tenant", regex: "b.*" }] }], request({ headers: [["x-tenant", "ablue"]] })), -1);
    assert.equal(match([{ headers: [{ name: "x-tenant", regex: "b.*" }] }], request({})), -1, "a value test fails on an absent field");
    const both: HttpRule[] = [{ headers: [{ name: "a", present: true }, { name: "b", absent: true }] }];
    assert.equal(match(both, request({ headers: [["a", ""]] })), 0, "present holds for an empty line");
    assert.equal(match(both, request({ headers: [["a", "1"], ["b", "1"]] })), -1);
    assert.equal(match(both, request({ headers: [["b", "1"]] })), -1);
  });

  test("an invalid regex is refused at compile time", () => {
    assert.throws(() => compileHttpRules([{ path: { regex: "(" } }]), /is not RE2 syntax/);
  });
});
