// Alarms: the active ones with severity colours, acknowledge and shelve with a
// comment, and the alarm-only feed of transitions (WatchAlarms).
import { useState } from "preact/hooks";
import { AlarmCondition, AlarmEvent, Severity, type Alarm } from "../../gen/switchyard/v1/alarm_pb";
import { api, msToNs, nsToMs, rpc, toApiError, type ApiError } from "../api";
import { may } from "../identity";
import { alarmFeed, alarmKey, alarmsStatus, alarmsStore, identityStore } from "../state";
import { useStore } from "../store";
import { Refusal, StreamBadge, clock, enumName, whyNot } from "./common";

const shelveFor = [
  { label: "15 min", ms: 15 * 60e3 },
  { label: "1 h", ms: 3600e3 },
  { label: "8 h", ms: 8 * 3600e3 },
];

export function severityName(s: Severity): string {
  return enumName(Severity, s, "SEVERITY_");
}

export function AlarmsView() {
  const alarms = useStore(alarmsStore);
  const feed = useStore(alarmFeed);
  const status = useStore(alarmsStatus);
  const list = [...alarms.values()].sort((a, b) => b.severity - a.severity || b.latched - a.latched || alarmKey(a).localeCompare(alarmKey(b)));
  return (
    <section>
      <div class="toolbar">
        <strong>{list.length} active alarms</strong>
        <StreamBadge status={status} />
      </div>
      <table class="grid" data-testid="alarms">
        <thead>
          <tr>
            <th>severity</th>
            <th>channel</th>
            <th>condition</th>
            <th>value</th>
            <th>since</th>
            <th>message</th>
            <th>acknowledged</th>
            <th>actions</th>
          </tr>
        </thead>
        <tbody>
          {list.map((a) => (
            <AlarmRow key={alarmKey(a)} alarm={a} />
          ))}
        </tbody>
      </table>
      <h3>Alarm feed</h3>
      <ol class="feed" data-testid="alarm-feed">
        {feed.map((t) => (
          <li class={"sev-" + severityName(t.alarm?.severity ?? Severity.NO_ALARM).toLowerCase()}>
            <span class="mono">{clock(nsToMs(t.timestampNs))}</span> <strong>{enumName(AlarmEvent, t.event, "ALARM_EVENT_")}</strong>{" "}
            {t.alarm && alarmKey(t.alarm)} {t.alarm && severityName(t.alarm.severity)}{" "}
            {t.alarm && enumName(AlarmCondition, t.alarm.condition, "ALARM_CONDITION_")} {t.who && <span>by {t.who}</span>}{" "}
            {t.comment && <em>“{t.comment}”</em>} <span class="muted">{t.alarm?.message}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

function AlarmRow({ alarm: a }: { alarm: Alarm }) {
  const id = useStore(identityStore);
  const [comment, setComment] = useState("");
  const [shelve, setShelve] = useState(shelveFor[0].ms);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const sev = severityName(a.severity);
  const latched = severityName(a.latched);
  const shelved = a.shelvedUntilNs > 0n;
  const run = async (f: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
      setComment("");
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };
  const who = id.name || "dashboard";
  const canAck = may(id, rpc.acknowledge), canShelve = may(id, rpc.shelve);
  return (
    <tr class={"sev-" + (a.severity > Severity.NO_ALARM ? sev : latched).toLowerCase() + (shelved ? " shelved" : "")} data-alarm={alarmKey(a)} data-acked={a.acked ? "1" : "0"}>
      <td>
        <span class="sev">{sev}</span>
        {a.latched !== a.severity && <span class="muted"> (latched {latched})</span>}
      </td>
      <td class="nowrap">{alarmKey(a)}</td>
      <td>{enumName(AlarmCondition, a.condition, "ALARM_CONDITION_")}</td>
      <td class="num">{a.value !== undefined ? +a.value.toFixed(4) : ""}</td>
      <td class="mono">{clock(nsToMs(a.sinceNs))}</td>
      <td>{a.message}</td>
      <td>
        {a.acked ? `by ${a.ackedBy}${a.ackComment ? ` “${a.ackComment}”` : ""}` : "no"}
        {shelved && <div class="muted">shelved until {clock(nsToMs(a.shelvedUntilNs))} by {a.shelvedBy}</div>}
      </td>
      <td class="actions">
        <input placeholder="comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} data-testid="alarm-comment" />
        <button
          disabled={busy || !canAck || a.acked}
          title={canAck ? "" : whyNot(id.role, "acknowledge alarms")}
          onClick={() => run(() => api.alarms.acknowledge({ device: a.device, channel: a.channel, who, comment }))}
          data-testid="ack"
        >
          acknowledge
        </button>
        <select value={shelve} onChange={(e) => setShelve(Number(e.currentTarget.value))}>
          {shelveFor.map((s) => (
            <option value={s.ms}>{s.label}</option>
          ))}
        </select>
        <button
          disabled={busy || !canShelve}
          title={canShelve ? "" : whyNot(id.role, "shelve alarms")}
          onClick={() =>
            run(() => api.alarms.shelve({ device: a.device, channel: a.channel, who, comment, untilNs: shelved ? 0n : msToNs(Date.now() + shelve) }))
          }
          data-testid="shelve"
        >
          {shelved ? "unshelve" : "shelve"}
        </button>
        <Refusal error={error} />
      </td>
    </tr>
  );
}
