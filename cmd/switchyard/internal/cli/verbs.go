package cli

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	svv1 "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// The client verbs, one function each (see clientVerbs in client.go).

func cmdDevices(c *client, args []string) error {
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	return call(c, func(ctx context.Context) (*svv1.ListDevicesResponse, error) {
		return svv1.NewDeviceServiceClient(c.conn).ListDevices(ctx, &svv1.ListDevicesRequest{})
	}, func(r *svv1.ListDevicesResponse) {
		// In a cluster, the owning node (a single node shows no such column).
		clustered := false
		for _, d := range r.GetDevices() {
			clustered = clustered || d.GetNode() != ""
		}
		head := []string{"NAME", "STATE", "DRIVER", "ADDRESS", "RECONNECTIONS", "LAST-ERROR"}
		if clustered {
			head = slices.Insert(head, 2, "NODE")
		}
		rows := [][]string{head}
		for _, d := range r.GetDevices() {
			row := []string{d.GetName(), enumName(d.GetState(), "DEVICE_STATE_"), d.GetDriver(),
				d.GetAddress(), strconv.FormatUint(uint64(d.GetReconnections()), 10), lastError(d)}
			if clustered {
				node := d.GetNode()
				if node == "" {
					node = "-"
				}
				row = slices.Insert(row, 2, node)
			}
			rows = append(rows, row)
		}
		c.table(rows)
	})
}

// lastError is a device's last error while it is not connected, else "".
func lastError(d *svv1.Device) string {
	if d.GetState() == svv1.DeviceState_DEVICE_STATE_CONNECTED {
		return ""
	}
	return d.GetLastError()
}

func cmdSend(c *client, args []string) error {
	raw := c.fs.String("raw", "", "send this line as is (a line ending in '?' waits for a reply) instead of a named command")
	cmdTimeout := c.fs.Duration("cmd-timeout", 0, "how long the server waits for the device (0: the device's reply timeout); --timeout is stretched to outlast it")
	pos, err := c.parse(args, 1, -1)
	if err != nil {
		return err
	}
	req := &svv1.SendCommandRequest{Device: pos[0]}
	switch {
	case *raw != "" && len(pos) > 1:
		return c.usageErr("unexpected argument %q: --raw takes the whole line", pos[1])
	case *raw != "":
		req.Command = &svv1.SendCommandRequest_Raw{Raw: *raw}
	case len(pos) < 2:
		return c.usageErr("missing COMMAND")
	default:
		req.Command = &svv1.SendCommandRequest_Name{Name: pos[1]}
		req.Args = pos[2:]
	}
	if *cmdTimeout > 0 {
		req.Timeout = durationpb.New(*cmdTimeout)
		// The call waits for the device, so it must outlast the command's timeout.
		c.timeout = max(c.timeout, *cmdTimeout+time.Second)
	}
	return call(c, func(ctx context.Context) (*svv1.SendCommandResponse, error) {
		return svv1.NewDeviceServiceClient(c.conn).SendCommand(ctx, req)
	}, func(r *svv1.SendCommandResponse) {
		vals := make([]string, len(r.GetValues()))
		for i, v := range r.GetValues() {
			vals[i] = formatValue(v)
		}
		switch values := strings.Join(vals, " "); {
		case r.GetReply() == "" && values == "":
			fmt.Fprintln(c.out, "ok")
		case values == "" || values == r.GetReply():
			fmt.Fprintln(c.out, r.GetReply()) // the values would only repeat the reply
		default:
			fmt.Fprintf(c.out, "%s\nvalues: %s\n", r.GetReply(), values)
		}
	})
}

func cmdAbort(c *client, args []string) error {
	pos, err := c.parse(args, 1, -1)
	if err != nil {
		return err
	}
	req := &svv1.AbortCommandRequest{Device: pos[0], Reason: strings.Join(pos[1:], " ")}
	return call(c, func(ctx context.Context) (*svv1.AbortCommandResponse, error) {
		return svv1.NewDeviceServiceClient(c.conn).AbortCommand(ctx, req)
	}, func(r *svv1.AbortCommandResponse) {
		if r.GetAborted() == "" {
			fmt.Fprintln(c.out, "idle: nothing to abort")
			return
		}
		fmt.Fprintln(c.out, "aborted:", r.GetAborted())
	})
}

func cmdLatest(c *client, args []string) error {
	pos, err := c.parse(args, 0, 2)
	if err != nil {
		return err
	}
	sel := &svv1.Selector{}
	if len(pos) > 0 {
		sel.Devices = pos[:1]
	}
	if len(pos) > 1 {
		sel.Channels = pos[1:]
	}
	return call(c, func(ctx context.Context) (*svv1.GetLatestResponse, error) {
		return svv1.NewTelemetryServiceClient(c.conn).GetLatest(ctx, &svv1.GetLatestRequest{Selector: sel})
	}, func(r *svv1.GetLatestResponse) {
		samples := slices.SortedFunc(slices.Values(r.GetSamples()), func(a, b *svv1.Sample) int {
			return cmp.Or(cmp.Compare(a.GetDevice(), b.GetDevice()), cmp.Compare(a.GetChannel(), b.GetChannel()))
		})
		rows := [][]string{{"DEVICE", "CHANNEL", "VALUE", "QUALITY", "AGE", "SEQ"}}
		for _, s := range samples {
			rows = append(rows, []string{s.GetDevice(), s.GetChannel(), formatValue(s.GetValue()),
				enumName(s.GetQuality(), "QUALITY_"), age(s.GetTimestampNs()), strconv.FormatUint(s.GetSeq(), 10)})
		}
		c.table(rows)
	})
}

func cmdWatch(c *client, args []string) error {
	var channels stringList
	c.fs.Var(&channels, "channels", "only these channels (glob patterns, comma-separated or repeated)")
	states := c.fs.Bool("states", false, "also print each device's state, then every change")
	pos, err := c.parse(args, 1, -1)
	if err != nil {
		return err
	}
	req := &svv1.SubscribeRequest{Selector: &svv1.Selector{Devices: pos, Channels: channels}, DeviceStates: *states}
	var lost lossReport
	return watch(c, func(ctx context.Context) (grpc.ServerStreamingClient[svv1.SubscribeResponse], error) {
		return svv1.NewTelemetryServiceClient(c.conn).Subscribe(ctx, req)
	}, func(r *svv1.SubscribeResponse) {
		for _, d := range r.GetDevices() {
			state := enumName(d.GetState(), "DEVICE_STATE_")
			if d.GetNode() != "" {
				state += " on " + d.GetNode() // in a cluster: the owning node
			}
			fmt.Fprintln(c.out, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", clock(time.Now().UnixNano()),
				d.GetName(), state, oneLine(lastError(d)))))
		}
		for _, s := range r.GetSamples() {
			line := fmt.Sprintf("%s %s/%s %s %s seq %d", clock(s.GetTimestampNs()), s.GetDevice(), s.GetChannel(),
				formatValue(s.GetValue()), enumName(s.GetQuality(), "QUALITY_"), s.GetSeq())
			if s.GetError() != "" {
				line += ": " + oneLine(s.GetError())
			}
			fmt.Fprintln(c.out, line)
		}
		lost.update(c.out, "samples", r.GetDropped(), r.GetSquashed())
	})
}

func cmdTree(c *client, args []string) error {
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	var node string
	return call(c, func(ctx context.Context) (*svv1.GetSupervisionTreeResponse, error) {
		sys := svv1.NewSystemServiceClient(c.conn)
		if v, err := sys.GetClusterView(ctx, &svv1.GetClusterViewRequest{}); err == nil {
			node = v.GetNode() // in a cluster: whose tree this is (its devices are the ones it owns)
		}
		return sys.GetSupervisionTree(ctx, &svv1.GetSupervisionTreeRequest{})
	}, func(r *svv1.GetSupervisionTreeResponse) {
		if node != "" {
			fmt.Fprintf(c.out, "node %s (owns the devices below; switchyard cluster shows every owner)\n", node)
		}
		c.table(treeRows(nil, r.GetRoot(), 0))
	})
}

// cmdCluster prints the cluster view: the nodes, then each device's owner and
// the age of its lease, then the stream and the archive's lag.
func cmdCluster(c *client, args []string) error {
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	return call(c, func(ctx context.Context) (*svv1.GetClusterViewResponse, error) {
		return svv1.NewSystemServiceClient(c.conn).GetClusterView(ctx, &svv1.GetClusterViewRequest{})
	}, func(r *svv1.GetClusterViewResponse) {
		nodes := [][]string{{"NODE", "ADDRESS", "DEVICES", "UP", "MAY-OWN"}}
		for _, n := range r.GetNodes() {
			name := n.GetName()
			if name == r.GetNode() {
				name += " *"
			}
			mayOwn := strings.Join(n.GetMayOwn(), " | ")
			if mayOwn == "" {
				mayOwn = "any"
			}
			nodes = append(nodes, []string{name, n.GetAddress(), strconv.Itoa(int(n.GetDevices())),
				age(n.GetStarted().AsTime().UnixNano()), mayOwn})
		}
		c.table(nodes)
		fmt.Fprintln(c.out)
		leases := [][]string{{"DEVICE", "NODE", "OWNED-FOR", "RENEWED"}}
		for _, l := range r.GetLeases() {
			leases = append(leases, []string{l.GetDevice(), l.GetNode(), age(l.GetAcquired().AsTime().UnixNano()),
				age(l.GetRenewed().AsTime().UnixNano()) + " ago"})
		}
		c.table(leases)
		st := r.GetStream()
		archive := fmt.Sprintf("%d pending, %d unacknowledged", r.GetArchivePending(), r.GetArchiveUnacked())
		if r.GetArchiveError() != "" {
			archive = "no archiver"
		}
		fmt.Fprintf(c.out, "\nstream: %d messages, %d bytes; archive: %s\n", st.GetMessages(), st.GetBytes(), archive)
	})
}

// cmdRestart restarts a process of the supervision tree by its path below the
// root ("devices/psu-05"), as an operator does from an Erlang shell.
func cmdRestart(c *client, args []string) error {
	pos, err := c.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return call(c, func(ctx context.Context) (*svv1.RestartProcessResponse, error) {
		return svv1.NewSystemServiceClient(c.conn).RestartProcess(ctx, &svv1.RestartProcessRequest{Path: pos[0]})
	}, func(*svv1.RestartProcessResponse) { fmt.Fprintln(c.out, "restarted:", pos[0]) })
}

// treeRows appends the rows of p and its descendants, indented two spaces a level.
func treeRows(rows [][]string, p *svv1.Process, depth int) [][]string {
	kind := p.GetKind()
	if p.GetStrategy() != "" {
		kind += "(" + p.GetStrategy() + ")"
	}
	var more []string
	if n := p.GetMailboxDepth(); n > 0 {
		more = append(more, fmt.Sprintf("mailbox %d", n))
	}
	if p.GetStatus() != "" {
		more = append(more, oneLine(p.GetStatus()))
	}
	if p.GetInProgress() != "" {
		more = append(more, "in progress: "+oneLine(p.GetInProgress()))
	}
	rows = append(rows, []string{strings.Repeat("  ", depth) + p.GetId(), kind, enumName(p.GetState(), "PROCESS_STATE_"),
		fmt.Sprintf("restarts %d", p.GetRestarts()), strings.Join(more, "  ")})
	for _, child := range p.GetChildren() {
		rows = treeRows(rows, child, depth+1)
	}
	return rows
}

func cmdEvents(c *client, args []string) error {
	var procs, kindNames stringList
	snapshot := c.fs.Bool("snapshot", false, "print the tree first")
	c.fs.Var(&procs, "process", "only events about these processes: globs over the path below the root, e.g. devices/psu-0* (repeatable)")
	c.fs.Var(&kindNames, "kind", "only these kinds: "+strings.Join(eventKindNames(), ", ")+" (repeatable)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	req := &svv1.WatchSupervisionEventsRequest{IncludeSnapshot: *snapshot, Processes: procs}
	for _, name := range kindNames {
		k, ok := svv1.SupervisionEventKind_value[eventKindPrefix+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))]
		if !ok || k == 0 {
			return c.usageErr("unknown event kind %q (want %s)", name, strings.Join(eventKindNames(), ", "))
		}
		req.Kinds = append(req.Kinds, svv1.SupervisionEventKind(k))
	}
	var lost lossReport
	return watch(c, func(ctx context.Context) (grpc.ServerStreamingClient[svv1.WatchSupervisionEventsResponse], error) {
		return svv1.NewSystemServiceClient(c.conn).WatchSupervisionEvents(ctx, req)
	}, func(r *svv1.WatchSupervisionEventsResponse) {
		if snap := r.GetSnapshot(); snap != nil {
			c.table(treeRows(nil, snap, 0))
			return
		}
		lost.update(c.out, "events", r.GetDropped(), 0)
		ev := r.GetEvent()
		path := ev.GetPath()
		if ev.GetChild() != "" {
			path += "/" + ev.GetChild()
		}
		line := fmt.Sprintf("seq %d %s %s %s", ev.GetSeq(), clock(ev.GetTimestampNs()), path, enumName(ev.GetKind(), eventKindPrefix))
		if ev.GetKind() == svv1.SupervisionEventKind_SUPERVISION_EVENT_KIND_RESTART_SCHEDULED {
			line += " at " + clock(ev.GetNextRestartNs())
		}
		if ev.GetReason() != "" {
			line += " " + oneLine(ev.GetReason())
		}
		fmt.Fprintln(c.out, line)
	})
}

const eventKindPrefix = "SUPERVISION_EVENT_KIND_"

// eventKindNames are the names --kind takes, in the enum's order.
func eventKindNames() []string {
	var names []string
	for k := int32(1); svv1.SupervisionEventKind_name[k] != ""; k++ {
		names = append(names, strings.ToLower(enumName(svv1.SupervisionEventKind(k), eventKindPrefix)))
	}
	return names
}

func cmdAlarms(c *client, args []string) error {
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	return call(c, func(ctx context.Context) (*svv1.ListActiveAlarmsResponse, error) {
		return svv1.NewAlarmServiceClient(c.conn).ListActiveAlarms(ctx, &svv1.ListActiveAlarmsRequest{})
	}, func(r *svv1.ListActiveAlarmsResponse) { c.alarmTable(r.GetAlarms()...) })
}

func cmdAck(c *client, args []string) error {
	who := c.fs.String("who", os.Getenv("USER"), "who acknowledges, recorded only by a server without authentication (which records the token's or certificate's identity); default $USER")
	comment := c.fs.String("comment", "", "a comment recorded with the acknowledgement")
	pos, err := c.parse(args, 2, 2)
	if err != nil {
		return err
	}
	req := &svv1.AcknowledgeRequest{Device: pos[0], Channel: pos[1], Who: *who, Comment: *comment}
	return call(c, func(ctx context.Context) (*svv1.AcknowledgeResponse, error) {
		return svv1.NewAlarmServiceClient(c.conn).Acknowledge(ctx, req)
	}, func(r *svv1.AcknowledgeResponse) { c.alarmTable(r.GetAlarm()) })
}

// alarmTable prints alarms, one a row.
func (c *client) alarmTable(alarms ...*svv1.Alarm) {
	rows := [][]string{{"DEVICE", "CHANNEL", "CONDITION", "SEVERITY", "LATCHED", "ACKED", "VALUE", "MESSAGE"}}
	for _, a := range alarms {
		value, acked := "-", "no"
		if a.Value != nil {
			value = strconv.FormatFloat(a.GetValue(), 'g', -1, 64)
		}
		if a.GetAcked() {
			acked = strings.TrimSuffix("yes ("+a.GetAckedBy()+")", " ()")
		}
		rows = append(rows, []string{a.GetDevice(), a.GetChannel(), enumName(a.GetCondition(), "ALARM_CONDITION_"),
			enumName(a.GetSeverity(), "SEVERITY_"), enumName(a.GetLatched(), "SEVERITY_"), acked, value, a.GetMessage()})
	}
	c.table(rows)
}

// cmdReload asks the server to reload its configuration file and prints what
// changed; a refused configuration prints every problem and fails.
func cmdReload(c *client, args []string) error {
	dry := c.fs.Bool("dry-run", false, "only print what would change")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	return call(c, func(ctx context.Context) (*svv1.ReloadConfigResponse, error) {
		return svv1.NewSystemServiceClient(c.conn).ReloadConfig(ctx, &svv1.ReloadConfigRequest{DryRun: *dry})
	}, func(r *svv1.ReloadConfigResponse) { c.printReload(r.GetReload()) })
}

// printReload prints a reload: its summary, then the devices by change and
// what else needs saying, one line each.
func (c *client) printReload(r *svv1.ConfigReload) {
	fmt.Fprintln(c.out, r.GetSummary())
	d := r.GetDiff()
	var rows [][]string
	for _, l := range []struct {
		what  string
		names []string
	}{{"added", d.GetAdded()}, {"removed", d.GetRemoved()}, {"restarted", d.GetRestarted()}} {
		if len(l.names) > 0 {
			rows = append(rows, []string{l.what, strings.Join(l.names, " ")})
		}
	}
	for _, u := range d.GetUpdated() {
		rows = append(rows, []string{"updated", u.GetDevice() + " (" + strings.Join(u.GetChanged(), ", ") + ")"})
	}
	for _, n := range d.GetNeedsRestart() {
		rows = append(rows, []string{"needs a restart", n})
	}
	for _, f := range r.GetFailed() {
		rows = append(rows, []string{"failed", f})
	}
	for _, w := range r.GetWarnings() {
		rows = append(rows, []string{"warning", w})
	}
	c.table(rows)
}

// cmdConfig prints which configuration the server runs.
func cmdConfig(c *client, args []string) error {
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	return call(c, func(ctx context.Context) (*svv1.GetConfigResponse, error) {
		return svv1.NewSystemServiceClient(c.conn).GetConfig(ctx, &svv1.GetConfigRequest{})
	}, func(r *svv1.GetConfigResponse) {
		loaded := time.Unix(0, r.GetLoadedNs()).Format(time.RFC3339)
		if r.GetLoadedBy() != "" {
			loaded += " by " + r.GetLoadedBy() + " (" + strings.ToLower(enumName(r.GetLoadedTrigger(), "CONFIG_TRIGGER_")) + ")"
		} else {
			loaded += " (at start)"
		}
		rows := [][]string{
			{"file", r.GetSource()}, {"hash", r.GetHash()}, {"loaded", loaded},
			{"devices", fmt.Sprint(r.GetDevices())}, {"watch", fmt.Sprint(r.GetWatch())},
		}
		for _, n := range r.GetNeedsRestart() {
			rows = append(rows, []string{"needs a restart", n})
		}
		if l := r.GetLastReload(); l != nil {
			rows = append(rows, []string{"last reload", clock(l.GetTimestampNs()) + " by " + l.GetBy() + ": " + l.GetSummary()})
			for _, e := range l.GetErrors() {
				rows = append(rows, []string{"", e})
			}
		}
		c.table(rows)
	})
}
