import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { RawHttpRequest } from "./http-request.ts";
import { httpRequestView } from "./http-request.ts";

function reason(raw: RawHttpRequest): string | undefined {
  const result = httpRequestView(raw);
  return result.ok ? undefined : result.reason;
}

describe("httpRequestView", () => {
  test("the view: method as sent, normalized path, host without port, fields by lower-case name in order", () => {
    const result = httpRequestView({ method: "POST", target: "/a/%7e/../b?q=1", fields: [["Host", "API.shop:8080"], ["X-Tenant", "blue"], ["x-tenant", "red"]] });
    assert.ok(result.ok);
    assert.equal(result.view.method, "POST");
    assert.equal(result.view.path, "/a/b");
    assert.equal(result.view.host, "api.shop");
    assert.equal(result.query, "q=1");
    assert.deepEqual([...result.view.headers], [["host", ["API.shop:8080"]], ["x-tenant", ["blue", "red"]]]);
  });

  test("two Host lines are refused, even when equal", () => {
    assert.equal(reason({ method: "GET", target: "/", fields: [["Host", "a.shop"], ["host", "a.shop"]] }), "more than one Host field line");
  });

  test("absolute form must name the Host's host and port", () => {
    assert.equal(reason({ method: "GET", target: "http://a.shop/x", fields: [["Host", "A.shop:80"]] }), undefined);
    assert.equal(reason({ method: "GET", target: "http://b.shop/x", fields: [["Host", "a.shop"]] }), "absolute-form authority names another host than Host");
    assert.equal(reason({ method: "GET", target: "http://a.shop:8080/x", fields: [["Host", "a.shop"]] }), "absolute-form authority names another host than Host");
  });

  test("HTTP/2: :authority alone names the host; with Host, both must agree", () => {
    const alone = httpRequestView({ method: "GET", target: "/pkg.Service/Method", authority: "grpc.shop:50051", fields: [] });
    assert.ok(alone.ok);
    assert.equal(alone.view.host, "grpc.shop");
    assert.equal(reason({ method: "GET", target: "/", authority: "a.shop", fields: [["host", "b.shop"]] }), ":authority names another host than Host");
  });

  test("no host, or a host that is not one, is refused", () => {
    assert.equal(reason({ method: "GET", target: "/", fields: [] }), "request names no host");
    assert.equal(reason({ method: "GET", target: "/", fields: [["Host", "a.shop."]] }), "Host: host with a trailing dot");
  });

  test("a refused target is refused with the target's reason", () => {
    assert.equal(reason({ method: "GET", target: "/a%2fb", fields: [["Host", "a.shop"]] }), "encoded slash (%2F)");
  });
});
