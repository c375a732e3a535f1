// A read-only window into the page's live state for the browser tests
// (window.switchyardDebug); the page itself never reads it.
import type { Device } from "../gen/switchyard/v1/device_pb";
import type { Chart } from "./chart";
import type { SeriesTable } from "./series";

export interface HistoryDebug {
  /** Every raw sample of the joined series in order: ms timestamp and seq. */
  samples: () => { t: number; seq: string }[];
  /** How many of samples came from QueryHistory; -1 until the join is made. */
  joinIndex: () => number;
  mode: () => string; // "raw" or "buckets"
}

export interface DebugHooks {
  plots: SeriesTable[];
  /** The chart drawing a plot's table, if shown. */
  chartOf: (t: SeriesTable) => Chart | undefined;
  history: HistoryDebug | null;
  received: () => number;
  devices: () => Map<string, Device>;
}

export const debug: DebugHooks = { plots: [], chartOf: () => undefined, history: null, received: () => 0, devices: () => new Map() };

(window as unknown as { switchyardDebug: DebugHooks }).switchyardDebug = debug;
