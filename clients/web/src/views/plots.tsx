// The live plots: each plot selects channels by device and channel globs and
// tags (resolved with GetLatest to the channels that exist), all plots share one
// Subscribe stream (batch window and per-channel rate cap from the page), and a
// timer moves the received samples into the plots and redraws them in batches.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Device } from "../../gen/switchyard/v1/device_pb";
import { api, follow, formatError, toApiError, type StreamStatus } from "../api";
import { Chart, colour } from "../chart";
import { debug } from "../debug";
import { SeriesTable, type ChannelInfo } from "../series";
import { devicesStore } from "../state";
import { useStore } from "../store";
import { formatPlot, parsePlot, type PlotSpec, type ViewState } from "../urlstate";
import { StreamBadge } from "./common";

/** redrawMs is how often each plot takes in new samples and redraws. */
const redrawMs = 250;
/** legendRounds: the legends' values change every this many redraws (once a second). */
const legendRounds = 4;
/** buckets is how many time buckets (two rows each) a plot's window holds. */
const buckets = 1000;
/** keepS is how long a paused plot keeps the samples behind its view. */
const keepS = 600;

const windows = [10, 30, 60, 300, 900, 3600];
const rates = [0, 10, 50, 100, 200, 1000];

function globEscape(name: string): string {
  return name.replace(/[*?[\]\\]/g, (c) => "\\" + c);
}

export function unitOf(devices: Map<string, Device>, device: string, channel: string): string {
  return devices.get(device)?.channels.find((c) => c.name === channel)?.unit ?? "";
}

interface Resolved {
  spec: PlotSpec;
  table: SeriesTable;
}

export function PlotsView({ view, update }: { view: ViewState; update: (p: Partial<ViewState>) => void }) {
  const devices = useStore(devicesStore);
  const [resolved, setResolved] = useState<Resolved[]>([]);
  const [error, setError] = useState("");
  const [status, setStatus] = useState<StreamStatus>({ state: "connecting" });
  const [tick, setTick] = useState(0);
  const [rate, setRate] = useState({ perS: 0, dropped: 0n, squashed: 0n });
  const plotsKey = view.plots.map(formatPlot).join("\n");
  const unitsKey = [...devices.keys()].join(",");
  const pausedAt = useRef<number | null>(null);
  if (view.paused && pausedAt.current === null) pausedAt.current = Date.now() / 1000;
  if (!view.paused) pausedAt.current = null;
  const viewRef = useRef(view);
  viewRef.current = view;

  // Resolve every plot's selector to the channels that exist.
  useEffect(() => {
    const ac = new AbortController();
    Promise.all(
      view.plots.map((spec) => api.telemetry.getLatest({ selector: { devices: spec.devices, channels: spec.channels, tags: spec.tags } }, { signal: ac.signal })),
    ).then(
      (resps) => {
        setError("");
        setResolved(
          resps.map((r, i) => {
            const seen = new Set<string>();
            const chans: ChannelInfo[] = [];
            for (const s of r.samples) {
              const key = s.device + "/" + s.channel;
              if (!seen.has(key)) chans.push({ key, unit: unitOf(devicesStore.get(), s.device, s.channel) });
              seen.add(key);
            }
            chans.sort((a, b) => a.key.localeCompare(b.key));
            return { spec: view.plots[i], table: new SeriesTable(chans, view.windowS / buckets) };
          }),
        );
      },
      (err) => {
        if (!ac.signal.aborted) setError(formatError(toApiError(err)));
      },
    );
    return () => ac.abort();
  }, [plotsKey, unitsKey, view.windowS]);

  // One stream for the channels of every plot.
  useEffect(() => {
    debug.plots = resolved.map((r) => r.table);
    const devs = new Set<string>(), chans = new Set<string>();
    for (const r of resolved) {
      for (const c of r.table.channels) {
        const [d, ch] = [c.key.slice(0, c.key.indexOf("/")), c.key.slice(c.key.indexOf("/") + 1)];
        devs.add(globEscape(d));
        chans.add(globEscape(ch));
      }
    }
    if (devs.size === 0) return;
    const selector = { devices: [...devs], channels: [...chans] };
    const ac = new AbortController();
    let received = 0, lastCount = 0, lastAt = performance.now();
    let dropped = 0n, squashed = 0n;
    debug.received = () => received;
    void follow(
      ac.signal,
      (signal, onHeader) =>
        api.telemetry.subscribe(
          { selector, batchWindowMs: 100, maxBatch: 5000, maxRateHz: view.rateHz, initialValues: true },
          { signal, onHeader },
        ),
      (resp) => {
        received += resp.samples.length;
        dropped = resp.dropped;
        squashed = resp.squashed;
        for (const s of resp.samples) for (const r of resolved) r.table.add(s);
      },
      setStatus,
    );
    // The timer takes in what arrived and redraws one plot per tick, in turn, so
    // each plot redraws every redrawMs and the work is spread evenly over that
    // time instead of arriving in bursts; legends (a page layout each) follow
    // every legendRounds rounds.
    const n = Math.max(1, resolved.length);
    let tickNo = 0;
    const timer = setInterval(() => {
      const v = viewRef.current;
      const now = Date.now() / 1000;
      const from = pausedAt.current !== null ? Math.max(pausedAt.current - v.windowS, now - keepS) : now - v.windowS - 1;
      for (const r of resolved) r.table.flush(from);
      const turn = tickNo++ % n;
      if (!document.hidden && pausedAt.current === null && resolved.length > 0) {
        charts.get(resolved[turn].table)?.redraw();
        if (tickNo % (n * legendRounds) === 1) setTick((t) => t + 1);
      }
      const t = performance.now();
      if (t - lastAt >= 1000) {
        setRate({ perS: Math.round(((received - lastCount) * 1000) / (t - lastAt)), dropped, squashed });
        lastCount = received;
        lastAt = t;
      }
    }, redrawMs / n);
    return () => {
      ac.abort();
      clearInterval(timer);
    };
  }, [resolved, view.rateHz]);

  const range = (): [number, number] => {
    const end = pausedAt.current ?? Date.now() / 1000;
    return [end - viewRef.current.windowS, end];
  };

  return (
    <section class="plots">
      <div class="toolbar">
        <AddPlot onAdd={(p) => update({ plots: [...view.plots, p] })} />
        <label>
          window{" "}
          <select value={view.windowS} onChange={(e) => update({ windowS: Number(e.currentTarget.value) })} data-testid="window">
            {windows.map((w) => (
              <option value={w}>{w < 60 ? `${w} s` : `${w / 60} min`}</option>
            ))}
          </select>
        </label>
        <label title="per-channel rate cap the server applies (the latest value always arrives)">
          rate cap{" "}
          <select value={view.rateHz} onChange={(e) => update({ rateHz: Number(e.currentTarget.value) })}>
            {[...new Set([...rates, view.rateHz])].sort((a, b) => a - b).map((r) => (
              <option value={r}>{r === 0 ? "none" : `${r} Hz`}</option>
            ))}
          </select>
        </label>
        <button onClick={() => update({ paused: !view.paused })} data-testid="pause">
          {view.paused ? "resume" : "pause"}
        </button>
        <StreamBadge status={status} />
        <span class="muted" data-testid="rate">
          {rate.perS} samples/s{rate.dropped > 0n ? ` · ${rate.dropped} dropped` : ""}
          {rate.squashed > 0n ? ` · ${rate.squashed} squashed` : ""}
        </span>
      </div>
      {error && <div class="error">{error}</div>}
      {view.plots.length === 0 && <p class="muted">No plots yet: add one above (for example devices <code>psu-0*</code>, channels <code>voltage</code>).</p>}
      {resolved.map((r, i) => (
        <Plot
          key={formatPlot(r.spec) + i}
          spec={r.spec}
          table={r.table}
          range={range}
          tick={tick}
          onRemove={() => update({ plots: view.plots.filter((_, j) => j !== i) })}
        />
      ))}
    </section>
  );
}

const charts = new Map<SeriesTable, Chart>();
debug.chartOf = (t) => charts.get(t);

function Plot(props: { spec: PlotSpec; table: SeriesTable; range: () => [number, number]; tick: number; onRemove: () => void }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const box = el.current!;
    const chart = new Chart(box, props.table, { width: box.clientWidth || 800, height: 260, range: props.range });
    charts.set(props.table, chart);
    const ro = new ResizeObserver(() => chart.resize(box.clientWidth, 260));
    ro.observe(box);
    return () => {
      ro.disconnect();
      charts.delete(props.table);
      chart.destroy();
    };
  }, [props.table]);
  const { spec, table } = props;
  const tags = Object.entries(spec.tags).map(([k, v]) => `${k}=${v}`).join(" ");
  return (
    <div class="plot" data-testid="plot" data-channels={table.channels.map((c) => c.key).join(" ")}>
      <div class="plot-head">
        <strong>{spec.devices.join(",") || "*"} / {spec.channels.join(",") || "*"}</strong>
        {tags && <span class="muted"> tags {tags}</span>}
        <span class="muted"> · {table.channels.length} channels</span>
        <button class="link" onClick={props.onRemove} title="remove this plot">remove</button>
      </div>
      <ul class="legend">
        {table.channels.map((c, i) => {
          const st = table.state[i];
          const bad = st.quality !== "" && st.quality !== "GOOD";
          return (
            <li data-key={c.key} data-quality={st.quality} data-points={st.points} class={bad ? "bad" : ""} title={st.error}>
              <span class="swatch" style={{ background: colour(i) }} />
              {c.key} <span class="value">{fmtValue(st.value)}</span> {c.unit}{" "}
              {bad && <span class="quality">{st.quality}</span>}
            </li>
          );
        })}
      </ul>
      <div ref={el} class="chart" />
    </div>
  );
}

function fmtValue(v: number | string | null): string {
  if (v === null) return "—";
  if (typeof v === "number") return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : String(+v.toFixed(4));
  return v;
}

function AddPlot({ onAdd }: { onAdd: (p: PlotSpec) => void }) {
  const [text, setText] = useState({ devices: "", channels: "", tags: "" });
  const spec = useMemo(() => parsePlot(`${text.devices}|${text.channels}|${text.tags}`), [text]);
  return (
    <form
      class="addplot"
      onSubmit={(e) => {
        e.preventDefault();
        onAdd(spec);
      }}
    >
      <input placeholder="devices (globs)" value={text.devices} onInput={(e) => setText({ ...text, devices: e.currentTarget.value })} data-testid="plot-devices" />
      <input placeholder="channels (globs)" value={text.channels} onInput={(e) => setText({ ...text, channels: e.currentTarget.value })} data-testid="plot-channels" />
      <input placeholder="tags k=v,k=v" value={text.tags} onInput={(e) => setText({ ...text, tags: e.currentTarget.value })} data-testid="plot-tags" />
      <button type="submit">add plot</button>
    </form>
  );
}
