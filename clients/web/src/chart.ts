// Chart draws a SeriesTable with uPlot: one y axis per unit (at most two shown),
// a fixed time window that scrolls with the clock, and a translucent band over
// every span during which a channel's quality was bad.
import uPlot from "uplot";
import type { SeriesTable } from "./series";

const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728"];

export function colour(i: number): string {
  return palette[i % palette.length];
}

export interface ChartOptions {
  width: number;
  height: number;
  /** The x range to show, in seconds since the epoch. */
  range: () => [number, number];
  /** Times (seconds) marked with a dashed vertical line, such as where history joins live. */
  marks?: () => number[];
}

export class Chart {
  readonly plot: uPlot;

  private marks: () => number[];

  constructor(el: HTMLElement, private table: SeriesTable, opts: ChartOptions) {
    this.marks = opts.marks ?? (() => []);
    const units = [...new Set(table.channels.map((c) => c.unit || "value"))];
    const axes: uPlot.Axis[] = [{ stroke: "#444", grid: { stroke: "#eee" } }];
    units.slice(0, 2).forEach((u, i) =>
      axes.push({ scale: u, label: u, side: i === 0 ? 3 : 1, stroke: "#444", grid: { show: i === 0, stroke: "#eee" } }),
    );
    const scales: uPlot.Scales = { x: { time: true, range: () => opts.range() } };
    for (const u of units) scales[u] = { auto: true };
    this.plot = new uPlot(
      {
        width: opts.width,
        height: opts.height,
        scales,
        axes,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        series: [
          {},
          ...table.channels.map((c, i) => ({
            label: c.key,
            scale: c.unit || "value",
            stroke: colour(i),
            width: 1,
            spanGaps: false,
            points: { show: false },
          })),
        ],
        hooks: { draw: [(u: uPlot) => this.drawBands(u)] },
      },
      this.data(),
      el,
    );
  }

  private data(): uPlot.AlignedData {
    return [this.table.xs, ...this.table.ys] as unknown as uPlot.AlignedData;
  }

  /** redraw shows the table's current columns. */
  redraw(): void {
    this.plot.setData(this.data());
  }

  resize(width: number, height: number): void {
    this.plot.setSize({ width, height });
  }

  destroy(): void {
    this.plot.destroy();
  }

  private drawBands(u: uPlot): void {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const [x0, x1] = [u.scales.x.min ?? 0, u.scales.x.max ?? 0];
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    this.table.bad.forEach((spans, i) => {
      for (const s of spans) {
        const end = s.end ?? x1;
        if (end < x0 || s.start > x1) continue;
        const a = u.valToPos(Math.max(s.start, x0), "x", true);
        const b = u.valToPos(Math.min(end, x1), "x", true);
        ctx.fillStyle = "rgba(214, 39, 40, 0.12)";
        ctx.fillRect(a, top, Math.max(b - a, 2), height);
        ctx.fillStyle = colour(i);
        ctx.fillRect(a, top + 2 + 5 * (i % 8), Math.max(b - a, 2), 4);
      }
    });
    ctx.strokeStyle = "#555";
    ctx.setLineDash([4, 4]);
    for (const m of this.marks()) {
      if (m < x0 || m > x1) continue;
      const x = Math.round(u.valToPos(m, "x", true)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.restore();
  }
}
