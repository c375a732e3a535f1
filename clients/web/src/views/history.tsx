// History joined to live: one channel's archive for a time range from
// QueryHistory (raw samples for short ranges, averaged buckets for long ones),
// then the live stream through Subscribe with since_ns at the point where the
// history ends. The server replays from there and goes live without a gap; the
// page drops what it already has (same timestamp and seq), so the joined series
// has neither a gap nor a repeat.
import { useEffect, useRef, useState } from "preact/hooks";
import { Aggregate } from "../../gen/switchyard/v1/history_pb";
import type { Sample } from "../../gen/switchyard/v1/sample_pb";
import { Quality } from "../../gen/switchyard/v1/sample_pb";
import { api, follow, formatError, msToNs, nsToMs, toApiError, type StreamStatus } from "../api";
import { Chart } from "../chart";
import { debug } from "../debug";
import { Joiner } from "../join";
import { SeriesTable } from "../series";
import { devicesStore } from "../state";
import { useStore } from "../store";
import type { ViewState } from "../urlstate";
import { StreamBadge, clock } from "./common";
import { unitOf } from "./plots";

const ranges = [60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400];
/** rawUpToS: ranges up to this are read as raw samples; longer ones as buckets. */
const rawUpToS = 900;
/** buckets: about how many buckets a long range is read in. */
const buckets = 1000;

function esc(name: string): string {
  return name.replace(/[*?[\]\\]/g, (c) => "\\" + c);
}

function label(s: number): string {
  return s < 3600 ? `${s / 60} min` : s < 86400 ? `${s / 3600} h` : `${s / 86400} d`;
}

export function HistoryView({ view, update }: { view: ViewState; update: (p: Partial<ViewState>) => void }) {
  const devices = useStore(devicesStore);
  const [status, setStatus] = useState<StreamStatus>({ state: "connecting" });
  const [info, setInfo] = useState("");
  const [error, setError] = useState("");
  const box = useRef<HTMLDivElement>(null);
  const dev = view.histDevice, ch = view.histChannel, rangeS = view.histRangeS;
  const names = [...devices.keys()].sort();
  const channels = devices.get(dev)?.channels.map((c) => c.name) ?? [];
  const unit = unitOf(devices, dev, ch);

  useEffect(() => {
    if (!dev || !ch || !box.current) return;
    const ac = new AbortController();
    const table = new SeriesTable([{ key: `${dev}/${ch}`, unit }], rangeS / 2000);
    const seen: { t: number; seq: string }[] = [];
    let joinIndex = -1, joinAtS = 0, mode = "";
    debug.history = { samples: () => seen, joinIndex: () => joinIndex, mode: () => mode };
    const el = box.current;
    const chart = new Chart(el, table, {
      width: el.clientWidth || 800,
      height: 320,
      range: () => [Date.now() / 1000 - rangeS, Date.now() / 1000],
      marks: () => (joinIndex >= 0 ? [joinAtS] : []),
    });
    const startNs = msToNs(Date.now() - rangeS * 1000);
    setError("");
    setInfo("reading the archive…");
    let timer: ReturnType<typeof setInterval> | undefined;

    (async () => {
      let joiner: Joiner;
      if (rangeS <= rawUpToS) {
        mode = "raw";
        const rows: Sample[] = [];
        let from = startNs;
        for (;;) {
          const r = await api.history.queryHistory({ device: dev, channel: ch, startNs: from, limit: 10000 }, { signal: ac.signal });
          const j = new Joiner(rows.length ? rows[rows.length - 1].timestampNs : -1n, []);
          for (const s of rows.slice(-50)) j.take(s);
          rows.push(...r.samples.filter((s) => j.take(s)));
          if (!r.truncated || r.samples.length === 0) break;
          from = r.samples[r.samples.length - 1].timestampNs;
        }
        for (const s of rows) {
          table.add(s);
          seen.push({ t: nsToMs(s.timestampNs), seq: String(s.seq) });
        }
        const last = rows.length ? rows[rows.length - 1].timestampNs : startNs;
        joiner = new Joiner(last, rows.filter((s) => s.timestampNs === last).map((s) => s.seq));
        setInfo(`${rows.length} archived samples, live from ${clock(nsToMs(last))}`);
      } else {
        mode = "buckets";
        const intervalMs = Math.max(1, Math.round((rangeS * 1000) / buckets));
        const r = await api.history.queryHistory(
          { device: dev, channel: ch, startNs, aggregate: Aggregate.AVG, intervalMs, limit: buckets * 2 },
          { signal: ac.signal },
        );
        // The last bucket may still be filling: the live stream replays it raw.
        const done = r.buckets.slice(0, -1);
        const key = `${dev}/${ch}`;
        for (const b of done) {
          table.add({ device: dev, channel: ch, timestampNs: b.timestampNs, seq: 0n, quality: Quality.GOOD, error: "", value: { kind: { case: "doubleValue", value: b.value } } } as Sample);
        }
        const since = r.buckets.length ? r.buckets[r.buckets.length - 1].timestampNs : startNs;
        joiner = new Joiner(since - 1n, []);
        setInfo(`${done.length} buckets of ${intervalMs} ms (average) for ${key}, live from ${clock(nsToMs(since))}`);
      }
      joinIndex = seen.length;
      joinAtS = nsToMs(joiner.since()) / 1000;
      table.flush(-Infinity);
      chart.redraw();
      timer = setInterval(() => {
        table.flush(Date.now() / 1000 - rangeS - 1);
        if (!document.hidden) chart.redraw();
      }, 500);
      await follow(
        ac.signal,
        (signal, onHeader) =>
          api.telemetry.subscribe(
            { selector: { devices: [esc(dev)], channels: [esc(ch)] }, sinceNs: joiner.since(), batchWindowMs: 100, maxBatch: 5000 },
            { signal, onHeader },
          ),
        (resp) => {
          for (const s of resp.samples) {
            if (s.device !== dev || s.channel !== ch || !joiner.take(s)) continue;
            table.add(s);
            seen.push({ t: nsToMs(s.timestampNs), seq: String(s.seq) });
          }
        },
        setStatus,
      );
    })().catch((err) => {
      if (!ac.signal.aborted) {
        setInfo("");
        setError(formatError(toApiError(err)));
      }
    });
    const ro = new ResizeObserver(() => chart.resize(el.clientWidth, 320));
    ro.observe(el);
    return () => {
      ac.abort();
      clearInterval(timer);
      ro.disconnect();
      chart.destroy();
      debug.history = null;
    };
  }, [dev, ch, rangeS, unit]);

  return (
    <section>
      <div class="toolbar">
        <select value={dev} onChange={(e) => update({ histDevice: e.currentTarget.value, histChannel: "" })} data-testid="hist-device">
          <option value="">device…</option>
          {names.map((n) => (
            <option value={n}>{n}</option>
          ))}
        </select>
        <select value={ch} onChange={(e) => update({ histChannel: e.currentTarget.value })} data-testid="hist-channel">
          <option value="">channel…</option>
          {channels.map((n) => (
            <option value={n}>{n}</option>
          ))}
        </select>
        <select value={rangeS} onChange={(e) => update({ histRangeS: Number(e.currentTarget.value) })} data-testid="hist-range">
          {[...new Set([...ranges, rangeS])].sort((a, b) => a - b).map((r) => (
            <option value={r}>last {label(r)}</option>
          ))}
        </select>
        {dev && ch && <StreamBadge status={status} />}
        <span class="muted" data-testid="hist-info">{info}</span>
      </div>
      {error && <div class="error" data-testid="hist-error">{error}</div>}
      {dev && ch && <p class="muted">The dashed line is where the archive ends and the live stream (Subscribe from there) takes over.</p>}
      {!(dev && ch) && <p class="muted">Choose a device and a channel.</p>}
      <div class="plot">{dev && ch && <div ref={box} class="chart" />}</div>
    </section>
  );
}
