// The API's int64 nanoseconds and JavaScript's float milliseconds.

/** nsToMs converts the API's int64 nanoseconds to JavaScript milliseconds. */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1000000n) + Number(ns % 1000000n) / 1e6;
}

export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1000)) * 1000n;
}
