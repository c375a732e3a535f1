// Joiner keeps what continues a series: the live stream after a history
// query, or a stream after a reconnect, replays from a time the page already has.
import type { Sample } from "../gen/switchyard/v1/sample_pb";

/** Joiner keeps the live stream's samples that continue the history. */
export class Joiner {
  private lastNs: bigint;
  private atLast = new Set<bigint>();
  constructor(sinceNs: bigint, seqsAtSince: bigint[]) {
    this.lastNs = sinceNs;
    for (const s of seqsAtSince) this.atLast.add(s);
  }
  /** since is where a (re)connected stream must start. */
  since(): bigint {
    return this.lastNs;
  }
  /** take reports whether a sample is new, and remembers it. */
  take(s: Sample): boolean {
    if (s.timestampNs < this.lastNs) return false;
    if (s.timestampNs === this.lastNs) {
      if (this.atLast.has(s.seq)) return false;
      this.atLast.add(s.seq);
      return true;
    }
    this.lastNs = s.timestampNs;
    this.atLast = new Set([s.seq]);
    return true;
  }
}
