// The view in the URL survives a round trip, and nonsense falls back to defaults.
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaults, parsePlot, readState, writeState, type ViewState } from "../src/urlstate";

test("a view survives the URL", () => {
  const v: ViewState = {
    ...defaults,
    tab: "plots",
    plots: [
      { devices: ["psu-0[1-5]"], channels: ["voltage", "current"], tags: {} },
      { devices: [], channels: ["temp"], tags: { area: "vacuum", line: "3" } },
    ],
    windowS: 300,
    rateHz: 0,
    paused: true,
    histDevice: "psu-02",
    histChannel: "voltage",
    histRangeS: 3600,
    device: "psu-14",
  };
  const q = writeState(v);
  assert.match(q, /plot=psu-0%5B1-5%5D%7Cvoltage%2Ccurrent/);
  assert.deepEqual(readState(q), v);
});

test("defaults are left out, and nonsense is ignored", () => {
  assert.equal(writeState(defaults), "?tab=devices");
  const v = readState("?tab=nope&window=abc&rate=-5&hrange=1e99");
  assert.equal(v.tab, "devices");
  assert.equal(v.windowS, defaults.windowS);
  assert.equal(v.rateHz, 0);
  assert.equal(v.histRangeS, 30 * 86400);
});

test("a plot spec reads globs and tags", () => {
  assert.deepEqual(parsePlot(" psu-* , env-01 |voltage|area=demo, kind = lines"), {
    devices: ["psu-*", "env-01"],
    channels: ["voltage"],
    tags: { area: "demo", kind: "lines" },
  });
  assert.deepEqual(parsePlot(""), { devices: [], channels: [], tags: {} });
});
