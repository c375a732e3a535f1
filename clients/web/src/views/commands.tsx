// Commands: a device's named commands with inputs typed from its CommandInfo
// (numbers with min/max, enums as choices, patterns for strings), the reply or
// the server's refusal, and abort. Controls the caller's role may not use are
// disabled; the server still decides, and its refusal is shown.
import { useState } from "preact/hooks";
import type { ArgumentInfo, CommandInfo, Device } from "../../gen/switchyard/v1/device_pb";
import { DeviceState } from "../../gen/switchyard/v1/device_pb";
import { api, rpc, toApiError, type ApiError } from "../api";
import { commandRole, may, mayRun, type Identity } from "../identity";
import { devicesStore, identityStore } from "../state";
import { displayValue } from "../series";
import { useStore } from "../store";
import { Refusal, enumName, whyNot } from "./common";

export function CommandsView({ device, select }: { device: string; select: (d: string) => void }) {
  const devices = useStore(devicesStore);
  const id = useStore(identityStore);
  const names = [...devices.keys()].sort();
  const d = devices.get(device);
  return (
    <section>
      <div class="toolbar">
        <label>
          device{" "}
          <select value={device} onChange={(e) => select(e.currentTarget.value)} data-testid="command-device">
            <option value="">choose…</option>
            {names.map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </label>
        {d && (
          <span class={"state " + enumName(DeviceState, d.state, "DEVICE_STATE_").toLowerCase()}>{enumName(DeviceState, d.state, "DEVICE_STATE_")}</span>
        )}
        {d && <AbortButton device={d.name} id={id} />}
      </div>
      {d && (
        <div class="commands">
          {d.commandInfo.length === 0 && <p class="muted">{d.name} has no named commands.</p>}
          {d.commandInfo.map((c) => (
            <CommandForm key={d.name + "/" + c.name} device={d} info={c} id={id} />
          ))}
          {may(id, rpc.sendCommand) && id.role === "admin" && <RawLine device={d.name} />}
        </div>
      )}
    </section>
  );
}

/** inputAttrs turns an argument's model into the attributes of its input. */
function inputAttrs(a: ArgumentInfo): Record<string, string | number> {
  switch (a.type) {
    case "int":
    case "float": {
      const attrs: Record<string, string | number> = { type: "number", step: a.type === "int" ? 1 : "any" };
      if (a.min !== undefined) attrs.min = a.min;
      if (a.max !== undefined) attrs.max = a.max;
      return attrs;
    }
    case "string":
      return a.pattern ? { type: "text", pattern: a.pattern } : { type: "text" };
    default:
      return { type: "text" };
  }
}

function ArgInput({ a, value, set }: { a: ArgumentInfo; value: string; set: (v: string) => void }) {
  const label = `${a.name}${a.unit ? ` (${a.unit})` : ""}`;
  const range = a.min !== undefined || a.max !== undefined ? ` ${a.min ?? "−∞"} … ${a.max ?? "∞"}` : "";
  if (a.type === "enum" || a.type === "bool") {
    const choices = a.type === "bool" ? ["true", "false"] : a.choices;
    return (
      <label>
        {label}{" "}
        <select value={value} onChange={(e) => set(e.currentTarget.value)} data-arg={a.name} required>
          <option value="">choose…</option>
          {choices.map((c) => (
            <option value={c}>{c}</option>
          ))}
        </select>
      </label>
    );
  }
  return (
    <label title={a.pattern ? `must match ${a.pattern}` : range.trim()}>
      {label}
      <span class="muted">{range}</span> <input {...inputAttrs(a)} value={value} onInput={(e) => set(e.currentTarget.value)} data-arg={a.name} required />
    </label>
  );
}

function CommandForm({ device, info, id }: { device: Device; info: CommandInfo; id: Identity }) {
  const [args, setArgs] = useState<string[]>(info.args.map(() => ""));
  const [reply, setReply] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const allowed = mayRun(id, info, rpc.sendCommand);
  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setReply(null);
    try {
      const r = await api.devices.sendCommand({ device: device.name, command: { case: "name", value: info.name }, args });
      const values = r.values.map((v) => String(displayValue(v)));
      setReply(r.reply || values.length ? [r.reply, values.length ? `values: ${values.join(", ")}` : ""].filter(Boolean).join(" · ") : "ok");
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="command" onSubmit={send} data-command={info.name} noValidate={false}>
      <strong>{info.name}</strong>
      <span class="muted">
        {" "}
        role {commandRole(info)}
        {info.readback && ` · waits for ${info.readback} to settle`}
      </span>
      <div class="args">
        {info.args.map((a, i) => (
          <ArgInput a={a} value={args[i]} set={(v) => setArgs(args.map((x, j) => (j === i ? v : x)))} />
        ))}
        <button type="submit" disabled={busy || !allowed} title={allowed ? "" : whyNot(id.role, `run ${info.name} (needs ${commandRole(info)})`)} data-testid="send">
          {busy ? "sending…" : "send"}
        </button>
      </div>
      {reply !== null && (
        <div class="reply" data-testid="reply">
          {reply}
        </div>
      )}
      <Refusal error={error} />
    </form>
  );
}

function AbortButton({ device, id }: { device: string; id: Identity }) {
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const allowed = may(id, rpc.abortCommand);
  return (
    <span>
      <button
        disabled={!allowed}
        title={allowed ? "abort the command in progress" : whyNot(id.role, "abort commands")}
        onClick={async () => {
          setError(null);
          setResult(null);
          try {
            const r = await api.devices.abortCommand({ device, reason: "aborted from the dashboard" });
            setResult(r.aborted ? `aborted ${r.aborted}` : "nothing in progress");
          } catch (err) {
            setError(toApiError(err));
          }
        }}
        data-testid="abort"
      >
        abort
      </button>{" "}
      {result && <span class="muted">{result}</span>}
      <Refusal error={error} />
    </span>
  );
}

function RawLine({ device }: { device: string }) {
  const [line, setLine] = useState("");
  const [reply, setReply] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  return (
    <form
      class="command"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        setReply(null);
        try {
          const r = await api.devices.sendCommand({ device, command: { case: "raw", value: line } });
          setReply(r.reply || "ok");
        } catch (err) {
          setError(toApiError(err));
        }
      }}
    >
      <strong>raw line</strong> <span class="muted">admin: sent as is; a line ending in ? waits for a reply</span>
      <div class="args">
        <input value={line} onInput={(e) => setLine(e.currentTarget.value)} placeholder="*IDN?" required />
        <button type="submit">send</button>
      </div>
      {reply !== null && <div class="reply">{reply}</div>}
      <Refusal error={error} />
    </form>
  );
}
