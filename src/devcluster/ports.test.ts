import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PORT_SETTINGS, freePorts, portsFromEnv } from "./ports.ts";

describe("portsFromEnv", () => {
  test("defaults to the upstream ports", async () => {
    assert.deepEqual(await portsFromEnv({}), { apiserver: 6443, etcd: 2379, etcdPeer: 2380, controllerManager: 10257, scheduler: 10259 });
  });

  test("takes each variable, and 0 as a free port distinct from the others", async () => {
    const env = Object.fromEntries(Object.values(PORT_SETTINGS).map((s) => [s.env, "0"]));
    env.PALISADE_DEV_APISERVER_PORT = "16443";
    const ports = await portsFromEnv(env);
    assert.equal(ports.apiserver, 16443);
    const all = Object.values(ports);
    assert.equal(new Set(all).size, all.length);
    for (const port of all) assert.ok(port > 0 && port <= 65535);
  });

  test("refuses a malformed port and two equal ports, naming the variable", async () => {
    await assert.rejects(portsFromEnv({ PALISADE_DEV_ETCD_PORT: "70000" }), /PALISADE_DEV_ETCD_PORT "70000": not a port number/);
    await assert.rejects(portsFromEnv({ PALISADE_DEV_ETCD_PORT: "-1" }), /PALISADE_DEV_ETCD_PORT "-1"/);
    await assert.rejects(portsFromEnv({ PALISADE_DEV_ETCD_PORT: "6443" }), /PALISADE_DEV_ETCD_PORT "6443": the apiserver port is 6443 already/);
  });

  test("with unset variables free, only what the environment sets is fixed", async () => {
    const ports = await portsFromEnv({ PALISADE_DEV_APISERVER_PORT: "7443" }, "free");
    assert.equal(ports.apiserver, 7443);
    for (const field of ["etcd", "etcdPeer", "controllerManager", "scheduler"] as const) {
      assert.notEqual(ports[field], PORT_SETTINGS[field].default, field);
    }
  });

  test("freePorts avoids every default and repeats none", async () => {
    const ports = Object.values(await freePorts());
    const defaults = new Set(Object.values(PORT_SETTINGS).map((s) => s.default));
    assert.equal(new Set(ports).size, ports.length);
    for (const port of ports) assert.ok(port > 0 && !defaults.has(port));
  });
});
