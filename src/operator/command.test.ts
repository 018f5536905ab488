import assert from "node:assert/strict";
import { test } from "node:test";
import { OperatorUsageError, runOperatorCommand } from "./command.ts";

test("refuses a metrics port that is not a port number, quoting it", async () => {
  for (const port of ["70000", "-1", "abc"]) {
    await assert.rejects(runOperatorCommand([`--metrics-port=${port}`]), (e: unknown) => {
      return e instanceof OperatorUsageError && e.message === `Cannot run the operator: --metrics-port "${port}" is not a port number (0-65535)`;
    });
  }
});

test("refuses an unknown flag", async () => {
  await assert.rejects(runOperatorCommand(["--leader-elect"]), { code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" });
});
