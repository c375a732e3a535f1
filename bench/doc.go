// Package bench owns Switchyard's benchmark harness: the scenarios behind
// `switchyard bench` (poll, floor, push, scale, fanout, command, archive, cluster), the
// management of the processes they run (the simulator and the server, each a child
// process of the harness), the measurements taken from those processes (CPU from
// /proc/<pid>/stat, peak RSS from /proc/<pid>/status, goroutines and counters from
// the server's /metrics, latency from the timestamps carried in each sample) and the
// output: one table, or CSV.
//
// A scenario is run by Run. It starts its children, measures, prints progress lines
// to Options.Progress while it runs, stops its children (SIGTERM, then SIGKILL after
// a bound) and returns one Result per measured row. Nothing a scenario starts
// outlives Run.
//
// # Concurrency contract
//
// Run is not safe to call concurrently with itself: it raises the process's open
// file limit, and the floor poller measures the harness process's own CPU with
// getrusage(RUSAGE_SELF), which is only meaningful while nothing else runs in it.
// The types it returns are plain values. Histogram is not safe for concurrent use;
// each subscriber owns its own.
package bench
