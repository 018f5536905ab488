import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { shellQuote } from "./shell-quote.ts";

test("every value comes back from the shell as it was, as one word", () => {
  assert.equal(shellQuote("/opt/cni/bin"), "/opt/cni/bin");
  for (const value of ["/opt/cni/bin", "/tmp/my dir", "it's", "$HOME", "a;b", "`x`", ""]) {
    assert.equal(execFileSync("sh", ["-c", `printf %s ${shellQuote(value)}`], { encoding: "utf8" }), value, value);
  }
});
