// The observer: the supervision tree live (GetSupervisionTree plus
// WatchSupervisionEvents) with each process's state, status, restarts, mailbox
// depth and command in progress, a restart button, and the event log with
// filters, as Erlang's observer shows a running node.
import { useEffect, useMemo, useState } from "preact/hooks";
import { ProcessState, SupervisionEventKind, type Process, type SupervisionEvent } from "../../gen/switchyard/v1/system_pb";
import { api, follow, nsToMs, rpc, toApiError, type ApiError, type StreamStatus } from "../api";
import { may } from "../identity";
import { identityStore } from "../state";
import { useStore } from "../store";
import { Refusal, StreamBadge, clock, duration, enumName, whyNot } from "./common";

/** logLength bounds the event log kept in the page. */
const logLength = 500;
/** refreshMs: the tree is re-read this often for what events do not carry (mailbox depth, uptime). */
const refreshMs = 2000;

const kinds = Object.values(SupervisionEventKind).filter((v): v is SupervisionEventKind => typeof v === "number" && v !== 0);

function kindName(k: SupervisionEventKind): string {
  return enumName(SupervisionEventKind, k, "SUPERVISION_EVENT_KIND_");
}

/** globMatch is path.Match for the event filter: * and ? stay within one path segment. */
export function globMatch(pattern: string, s: string): boolean {
  const re = "^" + pattern.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]") + "$";
  try {
    return new RegExp(re).test(s);
  } catch {
    return false;
  }
}

export function ObserverView() {
  const [root, setRoot] = useState<Process | null>(null);
  const [events, setEvents] = useState<SupervisionEvent[]>([]);
  const [dropped, setDropped] = useState(0n);
  const [status, setStatus] = useState<StreamStatus>({ state: "connecting" });
  const [filter, setFilter] = useState("");
  const [hidden, setHidden] = useState<Set<SupervisionEventKind>>(new Set());

  useEffect(() => {
    const ac = new AbortController();
    let pending: ReturnType<typeof setTimeout> | null = null;
    const refresh = () => {
      pending = null;
      api.system.getSupervisionTree({}, { signal: ac.signal }).then(
        (r) => setRoot(r.root ?? null),
        () => {},
      );
    };
    const soon = () => {
      if (pending === null) pending = setTimeout(refresh, 300);
    };
    void follow(
      ac.signal,
      (signal, onHeader) => api.system.watchSupervisionEvents({ includeSnapshot: true }, { signal, onHeader }),
      (r) => {
        setDropped(r.dropped);
        if (r.item.case === "snapshot") setRoot(r.item.value);
        else if (r.item.case === "event") {
          const ev = r.item.value;
          setEvents((l) => [ev, ...l].slice(0, logLength));
          setRoot((t) => (t ? applyEvent(t, ev) : t));
          soon();
        }
      },
      setStatus,
    );
    const timer = setInterval(refresh, refreshMs);
    return () => {
      ac.abort();
      clearInterval(timer);
      if (pending !== null) clearTimeout(pending);
    };
  }, []);

  const shown = useMemo(
    () => events.filter((e) => !hidden.has(e.kind) && (!filter || globMatch(filter, belowRoot(e.path, e.child)))),
    [events, filter, hidden],
  );

  return (
    <section class="observer">
      <div class="toolbar">
        <strong>Supervision tree</strong>
        <StreamBadge status={status} />
        {dropped > 0n && <span class="error">{String(dropped)} events dropped (the page read too slowly)</span>}
      </div>
      <table class="grid tree" data-testid="tree">
        <thead>
          <tr>
            <th>process</th>
            <th>kind</th>
            <th>state</th>
            <th>restarts</th>
            <th>uptime</th>
            <th title="messages waiting in its mailbox">mailbox</th>
            <th>in progress</th>
            <th>status / last exit</th>
            <th />
          </tr>
        </thead>
        <tbody>{root && <Rows p={root} depth={0} path="" />}</tbody>
      </table>
      <h3>Events</h3>
      <div class="toolbar">
        <input placeholder="process glob, e.g. devices/psu-0*" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} data-testid="event-filter" />
        {kinds.map((k) => (
          <label class="check">
            <input
              type="checkbox"
              checked={!hidden.has(k)}
              onChange={(e) => {
                const h = new Set(hidden);
                if (e.currentTarget.checked) h.delete(k);
                else h.add(k);
                setHidden(h);
              }}
            />
            {kindName(k)}
          </label>
        ))}
      </div>
      <ol class="feed" data-testid="events">
        {shown.map((e) => (
          <li data-kind={kindName(e.kind)}>
            <span class="mono">
              #{String(e.seq)} {clock(nsToMs(e.timestampNs))}
            </span>{" "}
            {e.path}
            {e.child && "/" + e.child} <strong>{kindName(e.kind)}</strong> {e.reason && <span class="muted">{firstLine(e.reason)}</span>}
            {e.restarts > 0 && <span> · {e.restarts === 1 ? "1 restart" : `${e.restarts} restarts`}</span>}
          </li>
        ))}
      </ol>
    </section>
  );
}

function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return i < 0 ? s : s.slice(0, i) + " …";
}

/** belowRoot turns an event's supervisor path and child into RestartProcess's path. */
function belowRoot(path: string, child: string): string {
  const i = path.indexOf("/");
  const below = i < 0 ? "" : path.slice(i + 1);
  return [below, child].filter(Boolean).join("/");
}

/** applyEvent updates the process an event is about, so restarts show at once. */
function applyEvent(root: Process, ev: SupervisionEvent): Process {
  const ids = ev.path.split("/").slice(1);
  if (ev.child) ids.push(ev.child);
  const walk = (p: Process, rest: string[]): Process => {
    if (rest.length === 0) {
      const q = { ...p, restarts: ev.child ? ev.restarts : p.restarts };
      if (ev.kind === SupervisionEventKind.STATUS) q.status = ev.reason;
      if (ev.kind === SupervisionEventKind.RESTART_SCHEDULED) q.state = ProcessState.BACKOFF;
      if (ev.kind === SupervisionEventKind.STARTED) q.state = ProcessState.RUNNING;
      if (ev.kind === SupervisionEventKind.EXITED) q.lastExit = ev.reason;
      return q;
    }
    const i = p.children.findIndex((c) => c.id === rest[0]);
    if (i < 0) return p;
    const children = p.children.slice();
    children[i] = walk(children[i], rest.slice(1));
    return { ...p, children };
  };
  return walk(root, ids);
}

function Rows({ p, depth, path }: { p: Process; depth: number; path: string }) {
  const id = useStore(identityStore);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const state = enumName(ProcessState, p.state, "PROCESS_STATE_");
  const canRestart = may(id, rpc.restartProcess);
  const restart = async () => {
    // Restarting fails the requests queued in its mailbox, and a supervisor
    // restarts all its children: ask first.
    const what = p.kind === "supervisor" ? `${path} and every process under it` : path;
    if (!window.confirm(`Restart ${what}? Requests waiting in its mailbox fail; none is replayed.`)) return;
    setBusy(true);
    setError(null);
    try {
      await api.system.restartProcess({ path });
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <tr data-process={path || "(root)"} data-state={state}>
        <td style={{ paddingLeft: `${0.4 + depth * 1.2}em` }}>{p.id}</td>
        <td class="muted">
          {p.kind}
          {p.strategy && ` ${p.strategy}`}
        </td>
        <td>
          <span class={"state " + state.toLowerCase()}>{state}</span>
          {p.state === ProcessState.BACKOFF && p.nextRestartNs > 0n && <span class="muted"> until {clock(nsToMs(p.nextRestartNs))}</span>}
        </td>
        <td class="num" data-testid="restarts">{p.restarts}</td>
        <td class="num">{p.uptimeNs > 0n ? duration(nsToMs(p.uptimeNs)) : ""}</td>
        <td class="num">{p.mailboxDepth || ""}</td>
        <td class="mono">{p.inProgress}</td>
        <td>
          {p.status}
          {p.lastExit && <div class="err">{firstLine(p.lastExit)}</div>}
        </td>
        <td>
          {path && (
            <button disabled={busy || !canRestart} title={canRestart ? `restart ${path}` : whyNot(id.role, "restart processes")} onClick={restart} data-testid="restart">
              restart
            </button>
          )}
          <Refusal error={error} />
        </td>
      </tr>
      {p.children.map((c) => (
        <Rows key={c.id} p={c} depth={depth + 1} path={path ? `${path}/${c.id}` : c.id} />
      ))}
    </>
  );
}
