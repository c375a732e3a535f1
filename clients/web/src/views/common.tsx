// Small pieces shared by the views.
import type { ApiError, StreamStatus } from "../api";
import { formatError } from "../api";

export function StreamBadge({ status }: { status: StreamStatus }) {
  if (status.state !== "retrying") {
    return status.state === "live" ? <span class="badge live">live</span> : <span class="badge">connecting…</span>;
  }
  return (
    <span class="badge down" title={formatError(status.error)}>
      reconnecting: {status.error.code}
    </span>
  );
}

/** Refusal shows a failed call with its code, reason and message. */
export function Refusal({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div class="error" role="alert" data-testid="error" data-code={error.code} data-reason={error.reason}>
      {formatError(error)}
      {Object.keys(error.metadata).length > 0 && (
        <span class="muted">
          {" "}
          ({Object.entries(error.metadata).map(([k, v]) => `${k}=${v}`).join(", ")})
        </span>
      )}
    </div>
  );
}

export function clock(ms: number): string {
  if (!ms) return "";
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** enumName strips an enum value's prefix: DEVICE_STATE_BACKOFF -> BACKOFF. */
export function enumName(e: Record<number, string>, v: number, prefix: string): string {
  return (e[v] ?? String(v)).replace(prefix, "");
}

/** whyNot is the tooltip of a control the caller's role may not use. */
export function whyNot(role: string, need: string): string {
  return `your role (${role || "unknown"}) may not ${need}`;
}
