/** What the proxy makes of a request's upgrade fields: the table of asks, honored, ignored and refused. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFieldLines } from "./hop-by-hop.ts";
import { asksUpgrade as asksUpgradeOf, upgradeAsk } from "./upgrade-request.ts";

const asksUpgrade = (raw: string[]) => asksUpgradeOf(readFieldLines(raw));

const WS = ["Host", "a", "Connection", "Upgrade", "Upgrade", "websocket"];

test("a request asks to switch only with the upgrade option and an Upgrade field", () => {
  assert.equal(asksUpgrade(WS), true);
  assert.equal(asksUpgrade(["Host", "a", "Connection", "keep-alive, UPGRADE", "upgrade", "websocket"]), true);
  assert.equal(asksUpgrade(["Host", "a", "Upgrade", "websocket"]), false);
  assert.equal(asksUpgrade(["Host", "a", "Connection", "Upgrade"]), false);
});

test("upgradeAsk: websocket alone is honored in HTTP/1.1; other protocols and HTTP/1.0 ignored; the ambiguous refused", () => {
  const cases: [string[], string, ReturnType<typeof upgradeAsk>][] = [
    [WS, "1.1", { kind: "websocket", value: "websocket" }],
    [["Connection", "Upgrade", "Upgrade", " WebSocket "], "1.1", { kind: "websocket", value: "WebSocket" }],
    [["Connection", "Upgrade", "Upgrade", "websocket", "Content-Length", "0"], "1.1", { kind: "websocket", value: "websocket" }],
    [WS, "1.0", { kind: "ignored" }],
    [["Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAA"], "1.1", { kind: "ignored" }],
    [["Connection", "Upgrade", "Upgrade", "TLS/1.2, foo"], "1.1", { kind: "ignored" }],
    [["Connection", "Upgrade", "Upgrade", "websocket", "Content-Length", "3"], "1.1", { kind: "refused", reason: "Upgrade on a request with a body" }],
    [["Connection", "Upgrade", "Upgrade", "h2c", "Transfer-Encoding", "chunked"], "1.1", { kind: "refused", reason: "Upgrade on a request with a body" }],
    [["Connection", "Upgrade", "Upgrade", "websocket", "Upgrade", "websocket"], "1.1", { kind: "refused", reason: "more than one Upgrade line" }],
    [["Connection", "Upgrade", "Upgrade", "websocket, h2c"], "1.1", { kind: "refused", reason: "Upgrade names websocket among other protocols" }],
    [["Connection", "Upgrade", "Upgrade", "websocket/13"], "1.1", { kind: "refused", reason: "Upgrade names websocket with a version" }],
    [["Connection", "Upgrade", "Upgrade", ""], "1.1", { kind: "refused", reason: "Upgrade is not a list of protocols" }],
    [["Connection", "Upgrade", "Upgrade", "web socket"], "1.1", { kind: "refused", reason: "Upgrade is not a list of protocols" }],
    [["Connection", "Upgrade", "Upgrade", "websocket/"], "1.1", { kind: "refused", reason: "Upgrade is not a list of protocols" }],
  ];
  for (const [rawHeaders, version, expected] of cases) assert.deepEqual(upgradeAsk(readFieldLines(rawHeaders), version), expected, JSON.stringify(rawHeaders));
});
