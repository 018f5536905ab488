import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsonLogger } from "../k8s/logger.ts";
import type { EndpointState } from "../policy/desired-state.ts";
import { MemoryDatapath } from "../../test/lib/memory-datapath.ts";
import { PodAttachments } from "./pod-attachments.ts";

const ENDPOINT: EndpointState = { endpointId: 1, identity: 256, slot: 1, flags: 0 };

function setup(): { datapath: MemoryDatapath; endpoints: Map<string, EndpointState>; attachments: PodAttachments } {
  const datapath = new MemoryDatapath();
  const endpoints = new Map<string, EndpointState>();
  const attachments = new PodAttachments(datapath, (pod) => endpoints.get(pod), jsonLogger("error", {}, () => {}));
  return { datapath, endpoints, attachments };
}

describe("PodAttachments", () => {
  it("attaches a pod found before its endpoint state once a commit computed it, and detaches a released pod only after the next commit", () => {
    const { datapath, endpoints, attachments } = setup();
    attachments.found("x/a", { name: "veth1", ifindex: 7 });
    assert.equal(attachments.ifindexOf("x/a"), 7);
    assert.deepEqual(datapath.calls, [], "no endpoint state yet: nothing is attached");
    endpoints.set("x/a", ENDPOINT);
    attachments.committed(false);
    assert.deepEqual(datapath.calls, ["setEndpoint 7", "attach 7"]);
    attachments.release("x/a");
    assert.equal(attachments.ifindexOf("x/a"), 7, "the commit that removes the entry still finds the interface");
    assert.deepEqual(datapath.calls, ["setEndpoint 7", "attach 7"]);
    attachments.committed(false);
    assert.deepEqual(datapath.calls, ["setEndpoint 7", "attach 7", "detach 7"]);
    assert.equal(attachments.ifindexOf("x/a"), undefined);
  });

  it("moves a pod found on another interface: the old one loses its entry and is detached before the new one is attached", () => {
    const { datapath, endpoints, attachments } = setup();
    endpoints.set("x/a", ENDPOINT);
    attachments.found("x/a", { name: "veth1", ifindex: 7 });
    attachments.found("x/a", { name: "veth1", ifindex: 7 });
    attachments.found("x/a", { name: "veth2", ifindex: 9 });
    assert.deepEqual(datapath.calls, ["setEndpoint 7", "attach 7", "removeEndpoint 7", "detach 7", "setEndpoint 9", "attach 9"]);
    assert.deepEqual(datapath.attachedInterfaces(), [9]);
  });

  it("keeps a released pod that is found again on its interface before the commit", () => {
    const { datapath, endpoints, attachments } = setup();
    endpoints.set("x/a", ENDPOINT);
    attachments.found("x/a", { name: "veth1", ifindex: 7 });
    attachments.release("x/a");
    attachments.found("x/a", { name: "veth1", ifindex: 7 });
    attachments.committed(false);
    assert.deepEqual(datapath.calls, ["setEndpoint 7", "attach 7"]);
  });

  it("detaches the interfaces no local pod owns after the first full sync only", () => {
    const { datapath, endpoints, attachments } = setup();
    datapath.attached.add(5).add(7);
    endpoints.set("x/a", ENDPOINT);
    attachments.found("x/a", { name: "veth1", ifindex: 7 });
    attachments.committed(true);
    assert.deepEqual(datapath.attachedInterfaces(), [7]);
    assert.deepEqual(datapath.calls.slice(2), ["removeEndpoint 5", "detach 5"]);
    datapath.attached.add(6);
    attachments.committed(false);
    assert.deepEqual(datapath.attachedInterfaces(), [6, 7], "later commits leave other interfaces alone");
  });
});
