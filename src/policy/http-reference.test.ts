/**
 * Differential test: random HTTP rules and random raw requests, judged by the
 * proxy's path (httpRequestView, then compileHttpRules) and by the reference
 * (referenceHttpVerdict); both must refuse the same requests and pick the same
 * rule for the others. Small vocabularies on purpose: collisions between rule
 * strings and request strings, and encodings of the same path, are where the
 * two could part.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { HttpHeaderMatch, HttpRule } from "./api-types.ts";
import { compileHttpRules, validateHttpRules } from "./http-rule.ts";
import type { RawHttpRequest } from "./http-request.ts";
import { httpRequestView } from "./http-request.ts";
import { normalizePath } from "./http-path.ts";
import { referenceHttpVerdict, referenceNormalizePath } from "./http-reference.ts";

const PATH_PIECES = [
  "/", "/", "/", "a", "b", "public", "admin", ".", "..", "%2e", "%2E", "%2e%2e", ".%2E", "%2f", "%2F", "%5c", "\\",
  "%7e", "%7E", "~", "%41", "%61", "%c3%a9", "%C3%A9", "%C0%AE", "%e0%80%ae", "%ed%a0%80", "%80", "%25", "%252e", "%25%32%65", "%",
  "%2", "%zz", ";", ";x=1", "..;", "%3b", ":", "@", "!", "%20", " ", "é", "\u0000", "\t", "%00", "%0a", "*", "|", "[", "%5B",
];
const QUERY_PIECES = [...Array<string>(20).fill(""), "?", "?x=1", "?a=%2e&b=/c?d", "?x=%zz", "?x=é", "?x=a b", "#f", "?x#f"];
const HOSTS = ["api.shop", "API.Shop", "api.shop:80", "api.shop:8080", "x.api.shop", "evilapi.shop", "shop", "api.shop.", "a%2eshop", "user@api.shop", "[fd00::1]", "[FD00::1]:80", "10.0.0.1", "", "api.shop:99999"];
const METHODS = ["GET", "POST", "OPTIONS", "get", "CONNECT", "DELETE"];
const FIELD_NAMES = ["X-Tenant", "x-tenant", "Cookie", "Accept"];
const FIELD_VALUES = ["blue", "red", "", "blue, red", "a=1", "b=2", "bl", "application/json"];

const rawPathArb = fc.oneof(
  { weight: 9, arbitrary: fc.array(fc.constantFrom(...PATH_PIECES), { maxLength: 8 }).map((pieces) => `/${pieces.join("")}`) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...PATH_PIECES), { maxLength: 4 }).map((pieces) => pieces.join("")) },
);

// Paths that rules name, in several spellings, so that requests match rules often.
const likelyPathArb = fc.constantFrom("/", "/public/", "/public/a", "/admin", "/a", "/a/b", "/~a", "/%7ea", "/%C3%A9", "//", "/public/../admin", "/public/%2e%2e/admin", "/A", "/a;x=1", "/aaa");
const GOOD_HOSTS = ["api.shop", "API.Shop", "api.shop:80", "x.api.shop", "[fd00::1]", "10.0.0.1", "evilapi.shop"];

const targetArb = fc.tuple(
  fc.constantFrom(...Array<string>(12).fill("origin"), "absolute", "absolute", "asterisk"),
  fc.oneof({ weight: 3, arbitrary: likelyPathArb }, { weight: 2, arbitrary: rawPathArb }),
  fc.constantFrom(...QUERY_PIECES),
  fc.constantFrom(...GOOD_HOSTS, ...HOSTS),
).map(([form, path, query, host]) => form === "asterisk" ? "*" : form === "absolute" ? `http://${host}${path}${query}` : `${path}${query}`);

const requestArb: fc.Arbitrary<RawHttpRequest> = fc.record({
  method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("GET", "POST") }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
  target: targetArb,
  // HTTP/2's :authority, in one request of five.
  authority: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...GOOD_HOSTS, ...HOSTS) }),
  fields: fc.tuple(
    fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...GOOD_HOSTS).map((host) => [host]) },
      { weight: 1, arbitrary: fc.array(fc.constantFrom(...HOSTS), { minLength: 0, maxLength: 2 }) },
    ),
    fc.array(fc.tuple(fc.constantFrom(...FIELD_NAMES), fc.constantFrom(...FIELD_VALUES)), { maxLength: 4 }),
  ).map(([hosts, others]) => [...hosts.map((host) => ["Host", host] as [string, string]), ...others]),
});

// Rule strings: normalized paths (only those can match) and regexes over the same vocabulary.
const pathMatchArb = fc.oneof(
  fc.constantFrom("/", "/public/", "/public", "/admin", "/a", "/a/b", "/~a", "/%C3%A9", "//", "/a;x=1").map((exact) => ({ exact })),
  fc.constantFrom("/", "/public/", "/admin", "/a", "/A", "/%C3%A9", "/public/a").map((prefix) => ({ prefix })),
  fc.constantFrom("/public/.*", "/(admin|public)/[a-z]*", "/a+", ".*%C3%A9", "/[^/]*", "\\*").map((regex) => ({ regex })),
);
const hostMatchArb = fc.oneof(
  fc.constantFrom("api.shop", "API.shop", "shop", "[fd00::1]", "10.0.0.1").map((exact) => ({ exact })),
  fc.constantFrom("shop", "api.shop", "pi.shop").map((suffix) => ({ suffix })),
  fc.constantFrom(".*\\.shop", "api\\.SHOP", "[a-z]+").map((regex) => ({ regex })),
);
const headerMatchArb: fc.Arbitrary<HttpHeaderMatch> = fc.tuple(
  fc.constantFrom(...FIELD_NAMES),
  fc.oneof(
    fc.constantFrom(...FIELD_VALUES.filter((value) => value !== "")).map((exact) => ({ exact })),
    fc.constantFrom("bl", "blue", "a=1; b", "").map((prefix) => ({ prefix })),
    fc.constantFrom("b.*", "(red|blue)", ".*red", "a=1; b=2").map((regex) => ({ regex })),
    fc.constant({ present: true as const }),
    fc.constant({ absent: true as const }),
  ),
).map(([name, test]) => ({ name, ...test }));

// Each field is left out more often than not, so that requests often satisfy a whole rule.
const sometimes = <T>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
const ruleArb: fc.Arbitrary<HttpRule> = fc.record({
  method: sometimes(fc.constantFrom("GET", "POST", "OPTIONS")),
  path: sometimes(pathMatchArb),
  host: sometimes(hostMatchArb),
  headers: sometimes(fc.array(headerMatchArb, { minLength: 1, maxLength: 2 })),
}).map((rule) => Object.fromEntries(Object.entries(rule).filter(([, value]) => value !== undefined)) as HttpRule);

const rulesArb = fc.array(ruleArb, { minLength: 1, maxLength: 5 });

function implementationVerdict(rules: HttpRule[], request: RawHttpRequest) {
  const accepted = httpRequestView(request);
  if (!accepted.ok) return { refused: true };
  return { refused: false, rule: compileHttpRules(rules).match(accepted.view) };
}

describe("HTTP rules: implementation against reference", () => {
  test("the generated rules are valid", () => {
    fc.assert(fc.property(rulesArb, (rules) => {
      assert.deepEqual(validateHttpRules(rules, "http"), []);
    }), { numRuns: 500 });
  });

  test("same refusals and same first matching rule for 3000 random rule lists x 4 requests", () => {
    let refused = 0;
    let matched = 0;
    let unmatched = 0;
    fc.assert(fc.property(rulesArb, fc.array(requestArb, { minLength: 4, maxLength: 4 }), (rules, requests) => {
      for (const request of requests) {
        const expected = referenceHttpVerdict(rules, request);
        assert.deepEqual(implementationVerdict(rules, request), expected);
        if (expected.refused) refused++;
        else if (expected.rule >= 0) matched++;
        else unmatched++;
      }
    }), { numRuns: 3000 });
    // The generators must reach every outcome often, or the comparison says little.
    console.log(`# differential: ${refused} refused, ${matched} matched a rule, ${unmatched} matched none`);
    for (const [name, count] of Object.entries({ refused, matched, unmatched })) assert.ok(count >= 1000, `only ${count} requests ${name}`);
  });

  test("path normalization agrees on 5000 random raw paths, and refuses some and accepts some", () => {
    let accepted = 0;
    fc.assert(fc.property(rawPathArb, (raw) => {
      const implementation = normalizePath(raw);
      assert.equal(implementation.ok ? implementation.path : undefined, referenceNormalizePath(raw), JSON.stringify(raw));
      if (implementation.ok) accepted++;
    }), { numRuns: 5000 });
    assert.ok(accepted >= 500 && accepted <= 4500, `${accepted} of 5000 accepted`);
  });

  test("a path that passes a prefix rule after normalization is one the reference resolves under that prefix", () => {
    // The issue's own example, in the encodings the generators mix.
    for (const raw of ["/public/../admin", "/public/%2e%2e/admin", "/public/.%2E/admin", "/public//../../admin"]) {
      const request: RawHttpRequest = { method: "GET", target: raw, fields: [["Host", "api.shop"]] };
      const rules: HttpRule[] = [{ path: { prefix: "/public/" } }];
      assert.deepEqual(implementationVerdict(rules, request), { refused: false, rule: -1 }, raw);
      assert.deepEqual(referenceHttpVerdict(rules, request), { refused: false, rule: -1 }, raw);
    }
  });
});
