// The Switchyard dashboard: the page shell (identity and token, tabs, the view
// state in the URL) around the views.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { Severity } from "../gen/switchyard/v1/alarm_pb";
import { getToken, setToken } from "./api";
import { roleRank } from "./identity";
import { alarmsStore, identityError, identityStore, loadIdentity, startLive } from "./state";
import { useStore } from "./store";
import { readState, tabs, writeState, type Tab, type ViewState } from "./urlstate";
import { AlarmsView } from "./views/alarms";
import { CommandsView } from "./views/commands";
import { DevicesView } from "./views/devices";
import { HistoryView } from "./views/history";
import { ObserverView } from "./views/observer";
import { PlotsView } from "./views/plots";

const titles: Record<Tab, string> = {
  devices: "Devices",
  plots: "Live plots",
  history: "History",
  alarms: "Alarms",
  observer: "Observer",
  commands: "Commands",
};

function App() {
  const [view, setView] = useState<ViewState>(() => readState(location.search));
  const [session, setSession] = useState(0); // bumps when the token changes
  const update = (p: Partial<ViewState>) => {
    const next = { ...view, ...p };
    history.replaceState(null, "", writeState(next));
    setView(next);
  };
  useEffect(() => {
    history.replaceState(null, "", writeState(view));
  }, []);
  useEffect(() => {
    const ac = new AbortController();
    void loadIdentity();
    startLive(ac.signal);
    return () => ac.abort();
  }, [session]);

  return (
    <>
      <header>
        <h1>Switchyard</h1>
        <nav>
          {tabs.map((t) => (
            <button class={t === view.tab ? "tab active" : "tab"} onClick={() => update({ tab: t })} data-tab={t}>
              {titles[t]}
              {t === "alarms" && <AlarmCount />}
            </button>
          ))}
        </nav>
        <IdentityBox onToken={() => setSession((s) => s + 1)} />
      </header>
      <main key={session}>
        {view.tab === "devices" && <DevicesView open={(d) => update({ tab: "commands", device: d })} />}
        {view.tab === "plots" && <PlotsView view={view} update={update} />}
        {view.tab === "history" && <HistoryView view={view} update={update} />}
        {view.tab === "alarms" && <AlarmsView />}
        {view.tab === "observer" && <ObserverView />}
        {view.tab === "commands" && <CommandsView device={view.device} select={(d) => update({ device: d })} />}
      </main>
    </>
  );
}

function AlarmCount() {
  const alarms = useStore(alarmsStore);
  let worst = Severity.NO_ALARM, n = 0;
  for (const a of alarms.values()) {
    if (a.shelvedUntilNs > 0n) continue;
    n++;
    worst = Math.max(worst, a.severity, a.acked ? 0 : a.latched);
  }
  if (n === 0) return null;
  const cls = worst >= Severity.INVALID ? "invalid" : worst >= Severity.MAJOR ? "major" : "minor";
  return <span class={"count sev-" + cls} data-testid="alarm-count">{n}</span>;
}

function IdentityBox({ onToken }: { onToken: () => void }) {
  const id = useStore(identityStore);
  const err = useStore(identityError);
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState("");
  // Unauthenticated with a real role: the server runs without authentication.
  // Without one (role "none"): it wants a token.
  const who = id.authenticated
    ? `${id.name} · ${id.role}`
    : roleRank(id.role) > 0
      ? `${id.name} · ${id.role} (no authentication)`
      : id.role
        ? "not signed in: this server needs a token"
        : "";
  return (
    <div class="identity" data-testid="identity" data-role={id.role} data-name={id.name}>
      <span title={id.serverVersion ? `server ${id.serverVersion}` : ""}>{who}</span>
      {err && <span class="error">{err}</span>}
      {editing ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setToken(text.trim());
            setText("");
            setEditing(false);
            onToken();
          }}
        >
          <input type="password" autocomplete="off" placeholder="bearer token" value={text} onInput={(e) => setText(e.currentTarget.value)} data-testid="token-input" />
          <button type="submit">use token</button>
          <button type="button" onClick={() => setEditing(false)}>
            cancel
          </button>
        </form>
      ) : (
        <>
          <button onClick={() => setEditing(true)} data-testid="token-button">
            {getToken() ? "change token" : "token"}
          </button>
          {getToken() && (
            <button
              onClick={() => {
                setToken("");
                onToken();
              }}
            >
              sign out
            </button>
          )}
        </>
      )}
    </div>
  );
}

render(<App />, document.getElementById("app")!);
