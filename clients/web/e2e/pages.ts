// Helpers the specs share: console error capture, the page's debug hooks, and
// screenshots into artifacts/.
import type { Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";

export const artifacts = resolve(__dirname, "../../../artifacts");

/** consoleErrors collects the page's console errors and uncaught exceptions. */
export function consoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push("uncaught: " + e.message));
  return errors;
}

export async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: resolve(artifacts, name), fullPage });
}

/** PlotInfo is what the tests read of a live plot (window.switchyardDebug). */
export interface PlotInfo {
  keys: string[];
  rows: number;
  points: number[];
  quality: string[];
  bad: { start: number; end: number | null; quality: string }[][];
  /** The last cell of each channel's column that holds a sample (null: a gap). */
  last: (number | null | "none")[];
  /** Good values after the end of each channel's last closed bad span. */
  goodAfterBad: number[];
  /**
   * Rows strictly inside each channel's last closed bad span (a bucket away
   * from its ends), and how many of them are not null there: anything but null
   * would let the line bridge the outage.
   */
  inside: { rows: number; notNull: number }[];
}

export function plotInfo(page: Page, i: number): Promise<PlotInfo> {
  return page.evaluate((i) => {
    type Table = {
      channels: { key: string }[];
      xs: number[];
      ys: (number | null | undefined)[][];
      bad: { start: number; end: number | null; quality: string }[][];
      state: { points: number; quality: string }[];
      resolution: number;
    };
    const t = (window as unknown as { switchyardDebug: { plots: Table[] } }).switchyardDebug.plots[i];
    return {
      keys: t.channels.map((c) => c.key),
      rows: t.xs.length,
      points: t.state.map((s) => s.points),
      quality: t.state.map((s) => s.quality),
      bad: t.bad.map((spans) => spans.map((s) => ({ ...s }))),
      last: t.ys.map((col) => {
        for (let r = col.length - 1; r >= 0; r--) if (col[r] !== undefined) return col[r] as number | null;
        return "none" as const;
      }),
      goodAfterBad: t.ys.map((col, c) => {
        const closed = t.bad[c].filter((s) => s.end !== null);
        if (closed.length === 0) return 0;
        const end = closed[closed.length - 1].end!;
        return col.filter((v, r) => v !== undefined && v !== null && t.xs[r] > end).length;
      }),
      inside: t.ys.map((col, c) => {
        const closed = t.bad[c].filter((s) => s.end !== null);
        if (closed.length === 0) return { rows: 0, notNull: 0 };
        const s = closed[closed.length - 1];
        const rows = t.xs.map((x, r) => r).filter((r) => t.xs[r] > s.start + 2 * t.resolution && t.xs[r] < s.end! - 2 * t.resolution);
        return { rows: rows.length, notNull: rows.filter((r) => col[r] !== null).length };
      }),
    };
  }, i);
}
