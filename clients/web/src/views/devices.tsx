// The devices: state, the cluster node that owns each (on a cluster node),
// driver, address, reconnections, error and tags, live through WatchDevices.
import { DeviceState } from "../../gen/switchyard/v1/device_pb";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { clustered, nodeSummary } from "../nodes";
import { devicesStatus, devicesStore } from "../state";
import { useStore } from "../store";
import { StreamBadge, clock, enumName } from "./common";

export function DevicesView({ open }: { open: (device: string) => void }) {
  const devices = useStore(devicesStore);
  const status = useStore(devicesStatus);
  const list = [...devices.values()].sort((a, b) => a.name.localeCompare(b.name));
  const counts = new Map<string, number>();
  for (const d of list) {
    const s = enumName(DeviceState, d.state, "DEVICE_STATE_");
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const cluster = clustered(list);
  return (
    <section>
      <div class="toolbar">
        <strong data-testid="device-count">{list.length} devices</strong>
        <span class="muted">{[...counts].map(([s, n]) => `${n} ${s}`).join(" · ")}</span>
        {cluster && (
          <span class="muted" data-testid="node-summary" title="devices each cluster node owns">
            {nodeSummary(list)}
          </span>
        )}
        <StreamBadge status={status} />
      </div>
      <table class="grid" data-testid="devices">
        <thead>
          <tr>
            <th>name</th>
            <th>state</th>
            {cluster && <th title="the cluster node that owns the device and polls it">node</th>}
            <th>driver</th>
            <th>address</th>
            <th title="connections re-established after a failure, this run (not process restarts)">reconnections</th>
            <th>since / next attempt</th>
            <th>error</th>
            <th>tags</th>
            <th>identity</th>
          </tr>
        </thead>
        <tbody>
          {list.map((d) => {
            const state = enumName(DeviceState, d.state, "DEVICE_STATE_");
            const when =
              d.state === DeviceState.BACKOFF && d.nextAttempt
                ? "next " + clock(timestampMs(d.nextAttempt))
                : d.connectedSince
                  ? "since " + clock(timestampMs(d.connectedSince))
                  : "";
            return (
              <tr key={d.name} data-device={d.name} data-state={state}>
                <td>
                  <button class="link" onClick={() => open(d.name)} title="commands of this device">
                    {d.name}
                  </button>
                </td>
                <td>
                  <span class={"state " + state.toLowerCase()}>{state}</span>
                </td>
                {cluster && (
                  <td class="mono" data-testid="node">
                    {d.node || <span class="muted">no owner</span>}
                  </td>
                )}
                <td>{d.driver}</td>
                <td class="mono">{d.address}</td>
                <td class="num" data-testid="reconnections">{d.reconnections}</td>
                <td class="mono">{when}</td>
                {/* While connected, last_error is history: why it last reconnected. */}
                {d.state === DeviceState.CONNECTED ? (
                  <td class="muted" title="why the connection last broke">{d.lastError && "last: " + d.lastError}</td>
                ) : (
                  <td class="err">{d.lastError}</td>
                )}
                <td class="muted">
                  {Object.entries(d.tags)
                    .sort()
                    .map(([k, v]) => `${k}=${v}`)
                    .join(" ")}
                </td>
                <td class="muted">{d.identity}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
