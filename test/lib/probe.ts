/**
 * The traffic tests' probe: the same program as `palisade probe` runs in a
 * pod's network namespace (see src/cli/probe-client.ts for its arguments),
 * kept at this path for the tests that spawn it.
 */
import "../../src/cli/probe-client.ts";
