// SeriesTable holds the recent samples of a plot's channels as the aligned
// columns uPlot draws: one x column (seconds) and one y column per channel.
// Time is cut into buckets of a fixed resolution (a plot uses its window / 2000,
// under a pixel), and each bucket is two rows: the smallest and the largest
// value each channel had in it. A plot's cost then follows its width, not the
// sample rate, and spikes still show. A channel without a sample in a bucket is
// undefined there (uPlot draws over undefined); a sample of bad quality is a
// null: the line breaks there and stays broken until a good sample arrives, so
// an outage is a gap with a band over it, never a held line.
import { Quality, type Sample, type Value } from "../gen/switchyard/v1/sample_pb";
import { nsToMs } from "./time";

/** Cell is a y value: a number, null (bad quality: a gap) or undefined (no sample). */
export type Cell = number | null | undefined;

/** BadSpan is a time range (seconds) during which a channel's quality was not GOOD. */
export interface BadSpan {
  start: number;
  end: number | null; // null: still bad
  quality: string;
}

export interface ChannelInfo {
  key: string; // "device/channel"
  unit: string;
}

/** ChannelState is what a plot's legend shows about one channel. */
export interface ChannelState {
  value: number | string | null; // the last good value; null after a bad sample
  quality: string; // "GOOD", "COMM_ERROR", ...
  error: string;
  points: number; // samples received (good and bad)
  lastSeq: bigint;
}

interface Pending {
  ns: bigint;
  col: number;
  v: number | null;
}

export function qualityName(q: Quality): string {
  return (Quality[q] ?? "UNSPECIFIED").replace(/^QUALITY_/, "");
}

/** numeric returns a sample's value as a number to plot, or undefined if it has none. */
export function numeric(s: Sample): number | undefined {
  const k = s.value?.kind;
  if (k?.case === "boolValue") return k.value ? 1 : 0;
  const v = displayValue(s.value);
  return typeof v === "number" ? v : undefined;
}

/** displayValue is a value as the page shows it; null when there is none. */
export function displayValue(v: Value | undefined): number | string | null {
  const k = v?.kind;
  switch (k?.case) {
    case "doubleValue":
      return k.value;
    case "intValue":
      return Number(k.value);
    case "boolValue":
      return k.value ? "true" : "false";
    case "stringValue":
      return k.value;
    default:
      return null;
  }
}

export class SeriesTable {
  readonly channels: ChannelInfo[];
  readonly index = new Map<string, number>();
  xs: number[] = [];
  ys: Cell[][];
  bad: BadSpan[][];
  state: ChannelState[];
  private pending: Pending[] = [];
  private readonly bucketNs: bigint;
  // down[c]: channel c's latest sample put into the columns was bad.
  private down: boolean[] = [];

  /**
   * resolution is the bucket width in seconds: two rows per bucket hold each
   * channel's smallest and largest value in it.
   */
  constructor(channels: ChannelInfo[], readonly resolution: number) {
    this.bucketNs = BigInt(Math.max(1, Math.round(resolution * 1e9)));
    this.channels = channels;
    channels.forEach((c, i) => this.index.set(c.key, i));
    this.ys = channels.map(() => []);
    this.bad = channels.map(() => []);
    this.state = channels.map(() => ({ value: null, quality: "", error: "", points: 0, lastSeq: 0n }));
  }

  /** add queues a sample for the next flush; samples of other channels are ignored. */
  add(s: Sample): boolean {
    const col = this.index.get(s.device + "/" + s.channel);
    if (col === undefined) return false;
    const st = this.state[col];
    if (s.seq !== 0n && s.seq === st.lastSeq) return true; // an initial value seen again
    st.lastSeq = s.seq;
    st.points++;
    const t = nsToMs(s.timestampNs) / 1000;
    const good = s.quality === Quality.GOOD;
    st.quality = qualityName(s.quality);
    st.error = s.error;
    st.value = good ? displayValue(s.value) : null;
    const spans = this.bad[col];
    const open = spans.length > 0 && spans[spans.length - 1].end === null ? spans[spans.length - 1] : null;
    if (good && open) open.end = t;
    if (!good && !open) spans.push({ start: t, end: null, quality: st.quality });
    const v = good ? numeric(s) : null;
    if (v === undefined) return true; // a string channel: legend only
    this.pending.push({ ns: s.timestampNs, col, v });
    return true;
  }

  /** flush moves queued samples into the columns and drops rows older than keepFrom. */
  flush(keepFrom: number): void {
    const p = this.pending;
    if (p.length > 0) {
      this.pending = [];
      p.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
      for (const { ns, col, v } of p) this.put(ns, col, v);
    }
    this.trim(keepFrom);
  }

  // put folds one value into its bucket's two rows (A: the bucket's start, B:
  // its middle). A holds the smallest value, B the largest; a bad sample makes B
  // null (and A, if the bucket had nothing yet), and good values after it in the
  // same bucket are left out so the gap shows.
  private put(ns: bigint, col: number, v: number | null): void {
    this.down[col] = v === null;
    // Bucket in integer nanoseconds: float division would put a sample on a
    // bucket's edge now in one bucket, now in the other.
    const start = (ns / this.bucketNs) * this.bucketNs;
    const row = this.bucketRow(Number(start) / 1e9, Number(start + this.bucketNs / 2n) / 1e9);
    const y = this.ys[col];
    const a = y[row], b = y[row + 1];
    if (v === null) {
      y[row + 1] = null;
      if (a === undefined) y[row] = null;
    } else if (a === undefined) {
      y[row] = v;
    } else if (a === null) {
      y[row + 1] = typeof b === "number" ? Math.max(b, v) : v;
    } else if (b !== null) {
      y[row] = Math.min(a, b ?? a, v);
      y[row + 1] = Math.max(a, b ?? a, v);
    }
  }

  // bucketRow returns the index of the bucket's first row, adding its two rows
  // (at the end, or in place for a late sample) if it has none yet.
  private bucketRow(t0: number, mid: number): number {
    const xs = this.xs, n = xs.length;
    if (n >= 2 && xs[n - 2] === t0) return n - 2;
    if (n === 0 || xs[n - 2] < t0) {
      xs.push(t0, mid);
      // A channel whose last sample was bad is null here, not undefined: uPlot
      // draws over undefined, and the line must not bridge the outage.
      this.ys.forEach((col, c) => {
        const cell = this.down[c] ? null : undefined;
        col.push(cell, cell);
      });
      return n;
    }
    const i = lowerBound(xs, t0);
    if (xs[i] === t0) return i;
    xs.splice(i, 0, t0, mid);
    for (const col of this.ys) col.splice(i, 0, undefined, undefined);
    return i;
  }

  private trim(keepFrom: number): void {
    let cut = lowerBound(this.xs, keepFrom);
    cut -= cut % 2; // whole buckets
    // Splicing is linear: cut in chunks, not on every flush.
    if (cut > 0 && (cut > 512 || cut > this.xs.length / 4)) {
      this.xs.splice(0, cut);
      for (const col of this.ys) col.splice(0, cut);
    }
    for (const spans of this.bad) {
      while (spans.length > 0 && spans[0].end !== null && spans[0].end < keepFrom) spans.shift();
    }
  }
}

/** lowerBound returns the first index of a sorted array whose value is >= v. */
export function lowerBound(a: number[], v: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
