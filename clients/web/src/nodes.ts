// Which cluster node owns each device: a cluster node's ListDevices and
// WatchDevices name it in Device.node; a single node leaves it empty.

/** clustered: some device names its node (the server is a cluster node). */
export function clustered(devices: readonly { node: string }[]): boolean {
  return devices.some((d) => d.node !== "");
}

/**
 * nodeSummary says how many devices each node owns, by node name
 * ("n1 8 · n2 8"), devices that no node owns now (in failover) last as
 * "no owner"; "" on a single node.
 */
export function nodeSummary(devices: readonly { node: string }[]): string {
  if (!clustered(devices)) return "";
  const counts = new Map<string, number>();
  let free = 0;
  for (const d of devices) {
    if (d.node === "") free++;
    else counts.set(d.node, (counts.get(d.node) ?? 0) + 1);
  }
  const parts = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([n, c]) => `${n} ${c}`);
  if (free > 0) parts.push(`no owner ${free}`);
  return parts.join(" · ");
}
