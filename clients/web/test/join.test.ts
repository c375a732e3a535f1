// The join of history and live: nothing before the join, nothing twice.
import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { test } from "node:test";
import { SampleSchema } from "../gen/switchyard/v1/sample_pb";
import { Joiner } from "../src/join";

const s = (ns: number, seq: number) => create(SampleSchema, { device: "d", channel: "c", timestampNs: BigInt(ns), seq: BigInt(seq) });

test("the replay's overlap is dropped and the rest kept in order", () => {
  // History ended with seq 9 and 10 at t=100 (same timestamp).
  const j = new Joiner(100n, [9n, 10n]);
  assert.equal(j.since(), 100n);
  const kept = [s(90, 8), s(100, 9), s(100, 10), s(100, 11), s(110, 12), s(110, 12), s(120, 13)].filter((x) => j.take(x)).map((x) => Number(x.seq));
  assert.deepEqual(kept, [11, 12, 13]);
  assert.equal(j.since(), 120n); // a reconnect replays from the last one kept
});

test("an empty history keeps everything from since on", () => {
  const j = new Joiner(50n, []);
  assert.deepEqual([s(49, 1), s(50, 2), s(51, 3)].filter((x) => j.take(x)).map((x) => Number(x.seq)), [2, 3]);
});
