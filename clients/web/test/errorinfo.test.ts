// google.rpc.ErrorInfo from its wire bytes, unknown fields skipped.
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeErrorInfo } from "../src/errorinfo";

test("reason, domain and metadata", () => {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string("BAD_ARGUMENT");
  w.tag(9, WireType.Varint).int32(42); // a field this reader does not know
  w.tag(2, WireType.LengthDelimited).string("switchyard");
  for (const [k, v] of [["device", "psu-01"], ["command", "set_voltage"]]) {
    w.tag(3, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(k).tag(2, WireType.LengthDelimited).string(v).join();
  }
  assert.deepEqual(decodeErrorInfo(w.finish()), {
    reason: "BAD_ARGUMENT",
    domain: "switchyard",
    metadata: { device: "psu-01", command: "set_voltage" },
  });
});

test("truncated bytes throw rather than invent a reason", () => {
  const bytes = new BinaryWriter().tag(1, WireType.LengthDelimited).string("BAD_ARGUMENT").finish();
  assert.throws(() => decodeErrorInfo(bytes.subarray(0, bytes.length - 3)));
});
