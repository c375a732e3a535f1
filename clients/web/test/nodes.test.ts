// The devices view's cluster node summary.
import assert from "node:assert/strict";
import { test } from "node:test";
import { clustered, nodeSummary } from "../src/nodes";

test("a single node names no node and shows no summary", () => {
  const devices = [{ node: "" }, { node: "" }];
  assert.equal(clustered(devices), false);
  assert.equal(nodeSummary(devices), "");
});

test("each node's devices counted, by name; devices in failover last", () => {
  const devices = [{ node: "n2" }, { node: "n1" }, { node: "" }, { node: "n2" }, { node: "n10" }];
  assert.equal(clustered(devices), true);
  assert.equal(nodeSummary(devices), "n1 1 · n10 1 · n2 2 · no owner 1");
});
