// The dashboard's connection to the server: one Connect transport (binary
// protobuf over fetch, same origin), typed clients for every service, the bearer
// token, error formatting with the server's machine-readable reason, and a
// reconnecting stream helper.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AlarmService } from "../gen/switchyard/v1/alarm_pb";
import { DeviceService } from "../gen/switchyard/v1/device_pb";
import { HistoryService } from "../gen/switchyard/v1/history_pb";
import { SystemService } from "../gen/switchyard/v1/system_pb";
import { TelemetryService } from "../gen/switchyard/v1/telemetry_pb";
import { decodeErrorInfo } from "./errorinfo";

export { msToNs, nsToMs } from "./time";

const tokenKey = "switchyard.token";

/** The bearer token of this browser tab (sessionStorage: gone when the tab closes). */
export function getToken(): string {
  return sessionStorage.getItem(tokenKey) ?? "";
}

export function setToken(token: string): void {
  if (token) sessionStorage.setItem(tokenKey, token);
  else sessionStorage.removeItem(tokenKey);
}

const bearer: Interceptor = (next) => (req) => {
  const token = getToken();
  if (token) req.header.set("authorization", "Bearer " + token);
  return next(req);
};

const transport = createConnectTransport({
  baseUrl: window.location.origin,
  useBinaryFormat: true,
  interceptors: [bearer],
});

export const api: {
  devices: Client<typeof DeviceService>;
  telemetry: Client<typeof TelemetryService>;
  system: Client<typeof SystemService>;
  alarms: Client<typeof AlarmService>;
  history: Client<typeof HistoryService>;
} = {
  devices: createClient(DeviceService, transport),
  telemetry: createClient(TelemetryService, transport),
  system: createClient(SystemService, transport),
  alarms: createClient(AlarmService, transport),
  history: createClient(HistoryService, transport),
};

/** Full RPC names as GetIdentity lists them in allowed_methods. */
export const rpc = {
  sendCommand: "/switchyard.v1.DeviceService/SendCommand",
  abortCommand: "/switchyard.v1.DeviceService/AbortCommand",
  restartProcess: "/switchyard.v1.SystemService/RestartProcess",
  acknowledge: "/switchyard.v1.AlarmService/Acknowledge",
  shelve: "/switchyard.v1.AlarmService/Shelve",
  queryHistory: "/switchyard.v1.HistoryService/QueryHistory",
} as const;

/** ApiError is a failed call as the page shows it. */
export interface ApiError {
  code: string; // "PERMISSION_DENIED", "INVALID_ARGUMENT", ...
  reason: string; // ErrorInfo reason ("BAD_ARGUMENT"), "" when the error has none
  message: string;
  metadata: Record<string, string>;
}

function codeName(code: Code): string {
  return (Code[code] ?? "Unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export function toApiError(err: unknown): ApiError {
  const ce = ConnectError.from(err);
  const out: ApiError = { code: codeName(ce.code), reason: "", message: ce.rawMessage, metadata: {} };
  for (const d of ce.details) {
    if ("type" in d && d.type === "google.rpc.ErrorInfo") {
      try {
        const info = decodeErrorInfo(d.value);
        out.reason = info.reason;
        out.metadata = info.metadata;
      } catch {
        // a detail we cannot read leaves the code and message
      }
    }
  }
  return out;
}

export function formatError(e: ApiError): string {
  const reason = e.reason && e.reason !== e.code ? ` ${e.reason}` : "";
  return `${e.code}${reason}: ${e.message}`;
}

export function isAbort(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Canceled;
}

/** StreamStatus is what a live view shows about its stream. */
export type StreamStatus = { state: "connecting" | "live" } | { state: "retrying"; error: ApiError };

/**
 * follow runs a server stream until signal aborts, reconnecting with capped,
 * jittered backoff when it ends or fails. open starts one attempt; each item
 * goes to onItem. A refusal the server will repeat (permission, bad request)
 * is reported and retried slowly, not in a tight loop.
 */
export async function follow<T>(
  signal: AbortSignal,
  open: (signal: AbortSignal, onHeader: () => void) => AsyncIterable<T>,
  onItem: (item: T) => void,
  onStatus: (s: StreamStatus) => void,
): Promise<void> {
  let delay = 250;
  while (!signal.aborted) {
    onStatus({ state: "connecting" });
    try {
      for await (const item of open(signal, () => onStatus({ state: "live" }))) {
        onItem(item);
        delay = 250;
      }
      if (signal.aborted) return;
      onStatus({ state: "retrying", error: { code: "UNAVAILABLE", reason: "", message: "stream ended", metadata: {} } });
    } catch (err) {
      if (signal.aborted) return;
      const e = toApiError(err);
      onStatus({ state: "retrying", error: e });
      if (e.code === "PERMISSION_DENIED" || e.code === "UNAUTHENTICATED" || e.code === "INVALID_ARGUMENT") {
        delay = Math.max(delay, 5000);
      }
    }
    await sleep(delay * (0.75 + Math.random() / 2), signal);
    delay = Math.min(delay * 2, 5000);
  }
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
