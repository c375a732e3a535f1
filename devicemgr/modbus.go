package devicemgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"

	"github.com/simonvetter/modbus"

	"github.com/switchyard/switchyard/telemetry"
)

// runModbus runs one Modbus TCP connection: channels are read per period
// group, one request per block of adjacent registers of one table (see
// modbusBlocks), and commands write a channel's register between polls. A timed-out or broken request ends the session (a late answer
// then cannot be matched to a later request); an exception reply (such as an
// illegal address) is a COMM_ERROR sample of that channel only.
func (d *Device) runModbus(ctx context.Context) error {
	client, err := modbus.NewClient(&modbus.ClientConfiguration{
		URL:     "tcp://" + d.spec.Address,
		Timeout: d.spec.ReplyTimeout,
		Logger:  slog.NewLogLogger(d.m.opts.Logger.Handler(), slog.LevelDebug),
	})
	if err != nil {
		return fmt.Errorf("modbus client for %s: %w", d.spec.Address, err)
	}
	if err := client.Open(); err != nil {
		return unreachableError{fmt.Errorf("dial %s: %w", d.spec.Address, err)}
	}
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer func() {
		stop()
		client.Close()
	}()
	if err := client.SetUnitId(d.spec.UnitID); err != nil {
		return err
	}
	d.setConnected(fmt.Sprintf("modbus unit %d", d.spec.UnitID))
	d.m.opts.Logger.Info("device connected", "device", d.spec.Name, "unit", d.spec.UnitID)
	groups := d.pollGroups()
	blocks := make(map[*pollGroup][]*modbusBlock, len(groups))
	for _, g := range groups {
		blocks[g] = d.modbusBlocks(g)
	}
	return d.schedule(ctx, groups,
		func(g *pollGroup) error { return d.pollModbus(client, g, blocks[g]) },
		func(req *request) error { return d.executeModbus(client, req) })
}

// modbusFailure reports whether err ends the session; exception replies do not.
func modbusFailure(err error) error {
	var me modbus.Error
	if errors.As(err, &me) {
		switch me {
		case modbus.ErrRequestTimedOut:
			return fmt.Errorf("modbus: %v: %w", err, ErrTimeout)
		case modbus.ErrIllegalFunction, modbus.ErrIllegalDataAddress, modbus.ErrIllegalDataValue,
			modbus.ErrServerDeviceFailure, modbus.ErrServerDeviceBusy, modbus.ErrAcknowledge:
			return nil
		}
	}
	return fmt.Errorf("modbus: %w", err)
}

// readChannel reads one channel with a request of its own (for a read-back).
func (d *Device) readChannel(client *modbus.ModbusClient, ch *ChannelSpec) (string, error) {
	b := &modbusBlock{table: ch.Register, start: ch.Addr, count: registerSpan(ch), chans: []*ChannelSpec{ch}}
	vals, err := d.readBlock(client, b)
	if err != nil {
		return "", err
	}
	return vals[0].text, vals[0].err
}

// modbusBlock is one read request of a poll cycle: adjacent registers (or
// bits) of one table that channels of the same period read.
type modbusBlock struct {
	table string // holding, input, coil or discrete
	start uint16
	count uint16
	chans []*ChannelSpec
	// split: the block got an exception reply (an address inside it does not
	// exist), so its channels are read one by one for the rest of the
	// session, each getting its own answer.
	split bool
}

// registerSpan is how many registers (or bits) a channel reads.
func registerSpan(ch *ChannelSpec) uint16 {
	if ch.Register == "coil" || ch.Register == "discrete" {
		return 1
	}
	return registerCount(ch.DataType)
}

// modbusBlocks groups the channels of one poll group into read requests:
// channels of one table, in address order, share a request while it spans at
// most MaxBlock registers with at most MaxGap unused ones between channels.
func (d *Device) modbusBlocks(g *pollGroup) []*modbusBlock {
	chans := append([]*ChannelSpec(nil), g.chans...)
	sort.SliceStable(chans, func(i, j int) bool {
		if chans[i].Register != chans[j].Register {
			return chans[i].Register < chans[j].Register
		}
		return chans[i].Addr < chans[j].Addr
	})
	var blocks []*modbusBlock
	var cur *modbusBlock
	for _, ch := range chans {
		end := int(ch.Addr) + int(registerSpan(ch))
		if cur != nil && cur.table == ch.Register &&
			int(ch.Addr) <= int(cur.start)+int(cur.count)+d.spec.MaxGap &&
			max(end, int(cur.start)+int(cur.count))-int(cur.start) <= d.spec.MaxBlock {
			cur.count = uint16(max(end, int(cur.start)+int(cur.count)) - int(cur.start))
			cur.chans = append(cur.chans, ch)
			continue
		}
		cur = &modbusBlock{table: ch.Register, start: ch.Addr, count: registerSpan(ch), chans: []*ChannelSpec{ch}}
		blocks = append(blocks, cur)
	}
	return blocks
}

// channelValue is one channel's value text from a block, or why it has none
// (a value that does not decode: errParse).
type channelValue struct {
	text string
	err  error
}

// readBlock sends one read request for a block and decodes each of its
// channels. An error is the request's own (exception, timeout, broken
// connection).
func (d *Device) readBlock(client *modbus.ModbusClient, b *modbusBlock) ([]channelValue, error) {
	d.requestCtr.Inc()
	out := make([]channelValue, len(b.chans))
	switch b.table {
	case "coil", "discrete":
		var bits []bool
		var err error
		if b.table == "coil" {
			bits, err = client.ReadCoils(b.start, b.count)
		} else {
			bits, err = client.ReadDiscreteInputs(b.start, b.count)
		}
		if err != nil {
			return nil, err
		}
		for i, ch := range b.chans {
			off := int(ch.Addr - b.start)
			if off >= len(bits) {
				out[i].err = fmt.Errorf("want bit %d, got %d bits: %w", ch.Addr, len(bits), errParse)
				continue
			}
			out[i].text = strconv.FormatBool(bits[off])
		}
		return out, nil
	}
	rt := modbus.HOLDING_REGISTER
	if b.table == "input" {
		rt = modbus.INPUT_REGISTER
	}
	regs, err := client.ReadRegisters(b.start, b.count, rt)
	if err != nil {
		return nil, err
	}
	for i, ch := range b.chans {
		off, n := int(ch.Addr-b.start), int(registerCount(ch.DataType))
		if off+n > len(regs) {
			out[i].err = fmt.Errorf("want registers %d..%d, got %d: %w", ch.Addr, int(ch.Addr)+n-1, len(regs), errParse)
			continue
		}
		text, err := decodeRegisters(regs[off:off+n], ch.DataType, ch.WordOrder, ch.Scale, ch.Offset)
		if err != nil {
			err = fmt.Errorf("%v: %w", err, errParse)
		}
		out[i] = channelValue{text, err}
	}
	return out, nil
}

// pollModbus reads one poll group, a request per block of adjacent registers,
// and publishes its samples in one batch. An exception reply (such as an
// illegal address) is a COMM_ERROR of the channels it concerns; a timeout or a
// broken connection ends the session.
func (d *Device) pollModbus(client *modbus.ModbusClient, g *pollGroup, blocks []*modbusBlock) error {
	d.pollCtr.Inc()
	ts := d.m.opts.Now().UnixNano()
	batch := make([]telemetry.Sample, 0, len(g.chans))
	defer func() { d.m.pub.Publish(batch...) }()
	for _, b := range blocks {
		if b.split {
			for _, ch := range b.chans {
				one := &modbusBlock{table: b.table, start: ch.Addr, count: registerSpan(ch), chans: []*ChannelSpec{ch}}
				var err error
				if batch, err = d.pollBlock(client, one, batch, ts); err != nil {
					return err
				}
			}
			continue
		}
		n := len(batch)
		var err error
		batch, err = d.pollBlock(client, b, batch, ts)
		if err != nil {
			return err
		}
		if len(b.chans) > 1 && batch[n].Quality == telemetry.CommError {
			// An exception for the whole block: read its channels one by one
			// from now on, so that only the channel at fault is bad.
			b.split = true
		}
	}
	return nil
}

// pollBlock reads one block and appends its channels' samples to batch. It
// returns an error only when the session must end.
func (d *Device) pollBlock(client *modbus.ModbusClient, b *modbusBlock, batch []telemetry.Sample, ts int64) ([]telemetry.Sample, error) {
	vals, err := d.readBlock(client, b)
	if err != nil {
		if fatal := modbusFailure(err); fatal != nil {
			return batch, fatal
		}
	}
	for i, ch := range b.chans {
		s := telemetry.Sample{Device: d.spec.Name, Channel: ch.Name, TimeNs: ts, Seq: d.seq.next(ch.Name)}
		var cerr error
		if err != nil {
			s.Quality, cerr = telemetry.CommError, err
		} else if cerr = vals[i].err; cerr == nil {
			var perr error
			if s.Value, perr = parseValue(ch.Type, vals[i].text); perr != nil {
				cerr = perr
			}
		}
		if cerr != nil {
			if s.Quality == telemetry.Good {
				s.Quality = telemetry.ParseError
			}
			s.Err = clip(fmt.Sprintf("%s %d: %v", ch.Register, ch.Addr, cerr))
			s.Value = telemetry.Value{}
		}
		batch = append(batch, s)
	}
	return batch, nil
}

// executeModbus writes a command's argument to its channel's register or coil.
func (d *Device) executeModbus(client *modbus.ModbusClient, req *request) error {
	if !req.begin(d.spec.Name) {
		return nil
	}
	spec, args, err := d.checkCommand(req.cmd)
	if err != nil {
		req.reply(Reply{}, err)
		return nil
	}
	if spec == nil {
		req.reply(Reply{}, fmt.Errorf("a modbus device takes only configured commands: %w", ErrBadArgument))
		return nil
	}
	var ch *ChannelSpec
	for i := range d.spec.Channels {
		if d.spec.Channels[i].Name == spec.Channel {
			ch = &d.spec.Channels[i]
		}
	}
	switch ch.Register {
	case "coil":
		on, perr := parseValue("bool", args[0])
		if perr != nil {
			req.reply(Reply{}, fmt.Errorf("command %s: %v: %w", spec.Name, perr, ErrBadArgument))
			return nil
		}
		d.requestCtr.Inc()
		err = client.WriteCoil(ch.Addr, on.B)
	case "holding":
		f, _ := strconv.ParseFloat(args[0], 64)
		regs, eerr := encodeRegisters(f, ch.DataType, ch.WordOrder, ch.Scale, ch.Offset)
		if eerr != nil {
			req.reply(Reply{}, fmt.Errorf("command %s: %v: %w", spec.Name, eerr, ErrBadArgument))
			return nil
		}
		d.requestCtr.Inc()
		err = client.WriteRegisters(ch.Addr, regs)
	default:
		req.reply(Reply{}, fmt.Errorf("command %s: channel %s is a read-only %s: %w", spec.Name, ch.Name, ch.Register, ErrBadArgument))
		return nil
	}
	if err != nil {
		fatal := modbusFailure(err)
		req.reply(Reply{}, fmt.Errorf("device %s, command %s: %w", d.spec.Name, spec.Name, errors.Join(err, fatal)))
		return fatal
	}
	if spec.Readback != "" {
		return d.awaitReadback(req, Reply{}, spec, args, func(ch *ChannelSpec) (string, error) {
			text, err := d.readChannel(client, ch)
			if err != nil && modbusFailure(err) == nil {
				return "", fmt.Errorf("%v: %w", err, errParse)
			}
			return text, err
		})
	}
	req.reply(Reply{}, nil)
	return nil
}
