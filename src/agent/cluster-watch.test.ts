import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { CachedPolicy } from "../api-objects/index.ts";
import { cachedForm, unchangedPolicy } from "./cluster-watch.ts";

/** An EBPFNetworkPolicy as the API sends it, then as the agent's informer caches it. */
function cached(change: { resourceVersion?: string; generation?: number; labels?: Record<string, string>; port?: number; cidr?: string; status?: unknown; annotations?: Record<string, string> }): KubernetesObject {
  const policy = {
    apiVersion: "palisade.dev/v1alpha1",
    kind: "EBPFNetworkPolicy",
    metadata: { name: "p", namespace: "x", uid: "u1", resourceVersion: change.resourceVersion ?? "10", generation: change.generation ?? 1, labels: change.labels ?? { team: "a" }, annotations: change.annotations ?? {} },
    spec: { selector: {}, ingress: [{ from: [{ ipBlock: { cidr: change.cidr ?? "10.0.0.0/8" } }], ports: [{ protocol: "TCP", port: change.port ?? 80 }] }] },
    status: change.status ?? { conditions: [] },
  };
  return cachedForm("EBPFNetworkPolicy", policy as KubernetesObject);
}

test("a policy update that changes only its status, annotations or resourceVersion is no change to the agent", () => {
  const before = cached({});
  assert.ok(unchangedPolicy(before, cached({ resourceVersion: "11", status: { conditions: [{ type: "Programmed", status: "True", observedGeneration: 1 }] } })));
  assert.ok(unchangedPolicy(before, cached({ resourceVersion: "12", annotations: { note: "x" } })));
});

test("a refused policy's status writes are no change either; its correction is one", () => {
  const before = cached({ cidr: "010.0.0.0/8" });
  assert.equal((before as CachedPolicy).converted.ok, false);
  assert.ok(unchangedPolicy(before, cached({ cidr: "010.0.0.0/8", resourceVersion: "11", status: { conditions: [{ type: "Accepted", status: "False" }] } })));
  assert.equal(unchangedPolicy(before, cached({ cidr: "10.0.0.0/8", resourceVersion: "12", generation: 2 })), false);
});

test("a policy update that changes what the policy layer reads is a change", () => {
  const before = cached({});
  assert.equal(unchangedPolicy(before, cached({ resourceVersion: "11", generation: 2, port: 81 })), false, "spec");
  assert.equal(unchangedPolicy(before, cached({ resourceVersion: "11", cidr: "10.0.0.0/9" })), false, "an ipBlock, even at the same generation");
  assert.equal(unchangedPolicy(before, cached({ resourceVersion: "11", generation: 2 })), false, "generation, which the report lists");
  assert.equal(unchangedPolicy(before, cached({ resourceVersion: "11", labels: { team: "b" } })), false, "labels");
});
