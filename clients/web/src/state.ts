// State shared by the views and kept live for the whole page: the identity, the
// devices (WatchDevices) and the active alarms with the alarm feed (WatchAlarms).
// These are the page's two long-lived streams; each view opens at most one more
// while it is shown, so a browser's six HTTP/1.1 connections per host always
// leave room for requests.
import type { Alarm, AlarmTransition } from "../gen/switchyard/v1/alarm_pb";
import { Severity } from "../gen/switchyard/v1/alarm_pb";
import type { Device } from "../gen/switchyard/v1/device_pb";
import { debug } from "./debug";
import { api, follow, formatError, toApiError, type StreamStatus } from "./api";
import { unknownIdentity, type Identity } from "./identity";
import { Store } from "./store";

export const identityStore = new Store<Identity>(unknownIdentity);
export const identityError = new Store<string>("");
export const devicesStore = new Store<Map<string, Device>>(new Map());
debug.devices = () => devicesStore.get();
export const devicesStatus = new Store<StreamStatus>({ state: "connecting" });
export const alarmsStore = new Store<Map<string, Alarm>>(new Map());
export const alarmFeed = new Store<AlarmTransition[]>([]);
export const alarmsStatus = new Store<StreamStatus>({ state: "connecting" });

/** feedLength bounds the alarm feed kept in the page. */
const feedLength = 300;

export async function loadIdentity(): Promise<void> {
  try {
    const r = await api.system.getIdentity({});
    identityStore.set({
      name: r.name,
      role: r.role,
      authenticated: r.authenticated,
      method: r.method,
      allowed: new Set(r.allowedMethods),
      serverVersion: r.serverVersion,
    });
    identityError.set("");
  } catch (err) {
    identityStore.set(unknownIdentity);
    identityError.set(formatError(toApiError(err)));
  }
}

export function alarmKey(a: { device: string; channel: string }): string {
  return a.device + "/" + a.channel;
}

/** isActive: in alarm, or latched and not acknowledged (ListActiveAlarms' rule). */
export function isActive(a: Alarm): boolean {
  return a.severity > Severity.NO_ALARM || (a.latched > Severity.NO_ALARM && !a.acked);
}

/** startLive opens the page-wide streams; abort the signal to end them. */
export function startLive(signal: AbortSignal): void {
  void follow(
    signal,
    (s, onHeader) => {
      devicesStore.set(new Map());
      return api.devices.watchDevices({}, { signal: s, onHeader });
    },
    (r) => {
      if (!r.device) return; // a configuration reload: its changes came before it
      const m = new Map(devicesStore.get());
      if (r.removed) m.delete(r.device.name); // removed by a reload: its final state
      else m.set(r.device.name, r.device);
      devicesStore.set(m);
    },
    (st) => devicesStatus.set(st),
  );

  // WatchAlarms, then ListActiveAlarms once the stream's headers are in (as the
  // API says); transitions that arrive before the list answers apply after it.
  let early: AlarmTransition[] | null = null;
  const apply = (t: AlarmTransition) => {
    const a = t.alarm;
    if (!a) return;
    const m = new Map(alarmsStore.get());
    if (isActive(a)) m.set(alarmKey(a), a);
    else m.delete(alarmKey(a));
    alarmsStore.set(m);
  };
  void follow(
    signal,
    (s, onHeader) => {
      early = [];
      return api.alarms.watchAlarms(
        {},
        {
          signal: s,
          onHeader: () => {
            onHeader();
            api.alarms.listActiveAlarms({ includeShelved: true }, { signal: s }).then(
              (r) => {
                alarmsStore.set(new Map(r.alarms.map((a) => [alarmKey(a), a])));
                const pending = early ?? [];
                early = null;
                pending.forEach(apply);
              },
              () => {
                early = null;
              },
            );
          },
        },
      );
    },
    (r) => {
      const t = r.transition;
      if (!t) return;
      alarmFeed.set([t, ...alarmFeed.get()].slice(0, feedLength));
      if (early) early.push(t);
      else apply(t);
    },
    (st) => alarmsStatus.set(st),
  );
}
