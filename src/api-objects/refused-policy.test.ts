import assert from "node:assert/strict";
import { test } from "node:test";
import { policyFromObject } from "./convert.ts";
import { isolationOfRefused } from "./refused-policy.ts";

const meta = { name: "p", namespace: "x", uid: "u1", generation: 3 };

test("a refused NetworkPolicy still isolates whom it selects, in the directions it lists, with none of its rules", () => {
  const obj = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta,
    spec: { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "010.0.0.0/8" } }] }] },
  };
  assert.equal(policyFromObject(obj).ok, false);
  assert.deepEqual(isolationOfRefused(obj)?.spec, { podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Egress"], ingress: [], egress: [] });
  assert.deepEqual(isolationOfRefused(obj)?.metadata, meta, "it stands in the policy's place, under its name");
});

test("without policyTypes, the directions default as the API server defaults them; unreadable ones become both", () => {
  const np = (spec: Record<string, unknown>) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: meta, spec: { podSelector: {}, ...spec } });
  assert.deepEqual(isolationOfRefused(np({ ingress: [{ ports: [{ port: 0 }] }] }))?.spec.policyTypes, ["Ingress"]);
  assert.deepEqual(isolationOfRefused(np({ egress: [{ ports: [{ port: 0 }] }] }))?.spec.policyTypes, ["Ingress", "Egress"]);
  assert.deepEqual(isolationOfRefused(np({ policyTypes: ["Sideways"] }))?.spec.policyTypes, ["Ingress", "Egress"]);
});

test("a refused EBPFNetworkPolicy keeps its Audit mode; one whose selector cannot be read isolates no one", () => {
  const ebpf = (spec: unknown) => ({ apiVersion: "palisade.dev/v1alpha1", kind: "EBPFNetworkPolicy", metadata: meta, spec });
  const audit = isolationOfRefused(ebpf({ selector: {}, mode: "Audit", ingress: [{ action: "Sometimes" }] }));
  assert.deepEqual(audit?.spec, { selector: {}, policyTypes: ["Ingress"], ingress: [], egress: [], mode: "Audit" });
  assert.equal(isolationOfRefused(ebpf({ selector: { matchLabels: { app: "not valid!" } }, ingress: [] })), undefined);
  assert.equal(isolationOfRefused(ebpf("all")), undefined);
});
