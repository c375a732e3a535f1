// The view as a shareable link: the tab, the plots' channel selections, the
// time window, the rate cap and the history selection live in the URL's query
// string; every change replaces the current history entry.

export type Tab = "devices" | "plots" | "history" | "alarms" | "observer" | "commands";
export const tabs: Tab[] = ["devices", "plots", "history", "alarms", "observer", "commands"];

/** PlotSpec selects a plot's channels the way the API's Selector does. */
export interface PlotSpec {
  devices: string[]; // glob patterns; empty: every device
  channels: string[]; // glob patterns; empty: every channel
  tags: Record<string, string>; // all must match
}

export interface ViewState {
  tab: Tab;
  plots: PlotSpec[];
  windowS: number; // live plots' time window
  rateHz: number; // per-channel rate cap asked of the server; 0: none
  paused: boolean;
  histDevice: string;
  histChannel: string;
  histRangeS: number;
  device: string; // the commands view's device
}

export const defaults: ViewState = {
  tab: "devices",
  plots: [],
  windowS: 60,
  rateHz: 50,
  paused: false,
  histDevice: "",
  histChannel: "",
  histRangeS: 300,
  device: "",
};

const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);

/** parsePlot reads "devices|channels|k=v,k=v" (comma-separated globs). */
export function parsePlot(s: string): PlotSpec {
  const [d = "", c = "", t = ""] = s.split("|");
  const tags: Record<string, string> = {};
  for (const kv of list(t)) {
    const i = kv.indexOf("=");
    if (i > 0) tags[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  return { devices: list(d), channels: list(c), tags };
}

export function formatPlot(p: PlotSpec): string {
  const tags = Object.entries(p.tags).map(([k, v]) => `${k}=${v}`).join(",");
  const s = `${p.devices.join(",")}|${p.channels.join(",")}`;
  return tags ? `${s}|${tags}` : s;
}

function num(v: string | null, def: number, min: number, max: number): number {
  const n = v === null ? NaN : Number(v);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : def;
}

export function readState(search: string): ViewState {
  const q = new URLSearchParams(search);
  const tab = q.get("tab") as Tab | null;
  return {
    tab: tab && tabs.includes(tab) ? tab : defaults.tab,
    plots: q.getAll("plot").map(parsePlot),
    windowS: num(q.get("window"), defaults.windowS, 5, 3600),
    rateHz: num(q.get("rate"), defaults.rateHz, 0, 10000),
    paused: q.get("paused") === "1",
    histDevice: q.get("hdev") ?? "",
    histChannel: q.get("hch") ?? "",
    histRangeS: num(q.get("hrange"), defaults.histRangeS, 10, 30 * 86400),
    device: q.get("device") ?? "",
  };
}

export function writeState(s: ViewState): string {
  const q = new URLSearchParams();
  q.set("tab", s.tab);
  for (const p of s.plots) q.append("plot", formatPlot(p));
  if (s.windowS !== defaults.windowS) q.set("window", String(s.windowS));
  if (s.rateHz !== defaults.rateHz) q.set("rate", String(s.rateHz));
  if (s.paused) q.set("paused", "1");
  if (s.histDevice) q.set("hdev", s.histDevice);
  if (s.histChannel) q.set("hch", s.histChannel);
  if (s.histRangeS !== defaults.histRangeS) q.set("hrange", String(s.histRangeS));
  if (s.device) q.set("device", s.device);
  return "?" + q.toString();
}
