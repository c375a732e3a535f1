// The frame-time budget: while the page receives 2,000 samples/s across 20
// plotted channels (5 simulated line pushers × 4 channels at 100 lines/s), its
// p95 frame interval, measured with requestAnimationFrame, stays under 50 ms.
import { expect, test, type Page } from "@playwright/test";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { Demo } from "./demo";
import { artifacts, consoleErrors, shot } from "./pages";

let demo: Demo;

test.beforeAll(async () => {
  demo = await Demo.start({ args: ["--scpi", "0", "--lines", "5", "--push-hz", "100"] });
});

test.afterAll(async () => {
  await demo?.stop();
});

test("p95 frame interval under 50 ms while 2,000 samples/s stream into 20 plotted channels", async ({ page }) => {
  const errors = consoleErrors(page);
  const plots = ["temp", "pressure", "flow", "line_seq"].map((c) => "plot=" + encodeURIComponent(`env-0[1-5]|${c}`)).join("&");
  // rate=200: the server's per-channel cap is on, above the 100 Hz the pushers send.
  await page.goto(`${demo.url}?tab=plots&${plots}&window=60&rate=200`);
  await expect(page.getByTestId("plot")).toHaveCount(4);
  for (const p of await page.getByTestId("plot").all()) {
    await expect(p).toHaveAttribute("data-channels", /^(env-0\d\/\w+ ){4}env-05\/\w+$/);
  }
  await page.waitForTimeout(62_000); // fill the whole window first
  const live = await frames(page, 20_000);
  // The same page paused: the same stream and decoding, no drawing. What the
  // machine gives the browser at this moment, to judge the figure above by.
  await page.getByTestId("pause").click();
  const paused = await frames(page, 10_000);
  const report = `live: ${describe(live)}\npaused (same stream, no drawing): ${describe(paused)}`;
  console.log(report);
  writeFileSync(resolve(artifacts, "dashboard-frames.txt"), report + "\n");
  await page.getByTestId("pause").click();
  await shot(page, "dashboard-load.png");
  expect(errors).toEqual([]);
  // A machine that cannot give even the paused page its frames (other work on
  // its cores; then the simulator falls behind too) cannot judge the budget;
  // say so rather than pass or fail.
  test.skip(paused.p95 > 20, `the machine is too busy to judge frame times: ${report}`);
  expect(live.samplesPerS, "the page really receives the load").toBeGreaterThan(1800);
  expect(live.p95, report).toBeLessThan(50);
});

interface Frames {
  frames: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  samplesPerS: number;
  secs: number;
}

function describe(m: Frames): string {
  return `${m.frames} frames in ${m.secs.toFixed(1)} s, p50 ${m.p50.toFixed(1)} ms, p95 ${m.p95.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms, max ${m.max.toFixed(1)} ms; received ${Math.round(m.samplesPerS)} samples/s`;
}

/** frames measures requestAnimationFrame intervals (and samples received) for ms. */
function frames(page: Page, ms: number): Promise<Frames> {
  return page.evaluate(async (ms) => {
    const d = (window as unknown as { switchyardDebug: { received(): number } }).switchyardDebug;
    const gaps: number[] = [];
    const r0 = d.received();
    const t0 = performance.now();
    await new Promise<void>((done) => {
      let last = performance.now();
      const frame = (now: number) => {
        gaps.push(now - last);
        last = now;
        if (now - t0 < ms) requestAnimationFrame(frame);
        else done();
      };
      requestAnimationFrame(frame);
    });
    const secs = (performance.now() - t0) / 1000;
    gaps.sort((a, b) => a - b);
    const q = (p: number) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
    return { frames: gaps.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: gaps[gaps.length - 1], samplesPerS: (d.received() - r0) / secs, secs };
  }, ms);
}
