// A read-only window into the page's live state for the browser tests
// (window.switchyardDebug); the page itself never reads it.
import type { SeriesTable } from "./series";

export interface DebugHooks {
  plots: SeriesTable[];
  history: { seqs: () => bigint[]; joinAt: () => number; mode: () => string } | null;
  received: () => number;
}

export const debug: DebugHooks = { plots: [], history: null, received: () => 0 };

(window as unknown as { switchyardDebug: DebugHooks }).switchyardDebug = debug;
