// The plot table's rules: gaps for bad quality, min and max per bucket, late
// samples in order, whole buckets trimmed.
import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { test } from "node:test";
import { Quality, SampleSchema, type Sample } from "../gen/switchyard/v1/sample_pb";
import { SeriesTable } from "../src/series";

const res = 0.1; // 100 ms buckets

function sample(channel: string, tS: number, seq: number, v: number | null): Sample {
  return create(SampleSchema, {
    device: "d",
    channel,
    timestampNs: BigInt(Math.round(tS * 1e9)),
    seq: BigInt(seq),
    quality: v === null ? Quality.COMM_ERROR : Quality.GOOD,
    error: v === null ? "refused" : "",
    value: v === null ? undefined : { kind: { case: "doubleValue", value: v } },
  });
}

function table(): SeriesTable {
  return new SeriesTable([{ key: "d/a", unit: "V" }, { key: "d/b", unit: "A" }], res);
}

test("a bucket holds each channel's smallest and largest value", () => {
  const t = table();
  [5, 9, 1, 7].forEach((v, i) => t.add(sample("a", 10 + i * 0.01, i + 1, v)));
  t.flush(0);
  assert.deepEqual(t.xs, [10, 10.05]);
  assert.deepEqual(t.ys[0], [1, 9]);
  assert.deepEqual(t.ys[1], [undefined, undefined]);
  assert.equal(t.state[0].points, 4);
  assert.equal(t.state[0].value, 7);
});

test("after a bad sample the channel is null in every row until a good one", () => {
  const t = table();
  t.add(sample("a", 10.0, 1, 5));
  t.add(sample("a", 10.1, 2, null));
  for (let i = 0; i < 5; i++) t.add(sample("b", 10.2 + i * 0.1, i + 1, 1)); // other rows go on
  t.add(sample("a", 10.75, 3, 6));
  t.flush(0);
  const a = t.ys[0];
  const row = (x: number) => t.xs.findIndex((v) => Math.abs(v - x) < 1e-9);
  assert.equal(a[row(10.0)], 5);
  for (const x of [10.1, 10.15, 10.2, 10.25, 10.3, 10.5, 10.65]) assert.equal(a[row(x)], null, `row ${x}`);
  assert.equal(a[row(10.7)], 6); // the line starts again with the first good value
  assert.equal(a[row(10.75)], undefined);
  assert.deepEqual(t.bad[0], [{ start: 10.1, end: 10.75, quality: "COMM_ERROR" }]);
  assert.equal(t.state[0].quality, "GOOD");
});

test("a good value after a bad one in the same bucket keeps the gap", () => {
  const t = table();
  t.add(sample("a", 10.0, 1, 5));
  t.add(sample("a", 10.02, 2, null));
  t.add(sample("a", 10.04, 3, 6));
  t.flush(0);
  assert.deepEqual(t.ys[0], [5, null]);
});

test("a late sample lands in its own bucket, in order", () => {
  const t = table();
  t.add(sample("a", 10.0, 1, 1));
  t.add(sample("a", 10.5, 2, 2));
  t.flush(0);
  t.add(sample("b", 10.2, 1, 3)); // older than the last row
  t.flush(0);
  assert.deepEqual(t.xs, [10, 10.05, 10.2, 10.25, 10.5, 10.55]);
  assert.deepEqual(t.ys[1], [undefined, undefined, 3, undefined, undefined, undefined]);
  assert.deepEqual(t.ys[0], [1, undefined, undefined, undefined, 2, undefined]);
});

test("a repeated seq (an initial value seen again) is counted once", () => {
  const t = table();
  t.add(sample("a", 10.0, 7, 1));
  t.add(sample("a", 10.0, 7, 1));
  t.flush(0);
  assert.equal(t.state[0].points, 1);
});

test("trimming drops whole buckets and closed spans before the window", () => {
  const t = table();
  for (let i = 0; i < 2000; i++) t.add(sample("a", 100 + i * res, i + 1, i % 3 === 0 ? null : i));
  t.flush(0);
  assert.equal(t.xs.length, 4000);
  t.flush(250);
  assert.equal(t.xs.length % 2, 0);
  assert.ok(t.xs[0] >= 249.9 && t.xs[0] <= 250, `first row ${t.xs[0]}`);
  assert.ok(t.bad[0].every((s) => s.end === null || s.end >= 250));
  assert.equal(t.ys[0].length, t.xs.length);
  assert.equal(t.ys[1].length, t.xs.length);
});
