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

test("refuses an identity grace period that is not a duration, quoting it", async () => {
  await assert.rejects(runOperatorCommand(["--identity-grace-period=soon"]), {
    name: "OperatorUsageError",
    message: 'Cannot run the operator: --identity-grace-period "soon" is not a duration (e.g. 60s, 2m, 500ms)',
  });
});
