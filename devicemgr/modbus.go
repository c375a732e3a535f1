package devicemgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/simonvetter/modbus"

	"github.com/switchyard/switchyard/telemetry"
)

// runModbus runs one Modbus TCP connection: channels are read per period
// group, one request per channel, and commands write a channel's register
// between polls. A timed-out or broken request ends the session (a late answer
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
		return fmt.Errorf("dial %s: %w", d.spec.Address, err)
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
	return d.schedule(ctx, d.pollGroups(),
		func(g *pollGroup) error { return d.pollModbus(client, g) },
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

func (d *Device) readChannel(client *modbus.ModbusClient, ch *ChannelSpec) (string, error) {
	switch ch.Register {
	case "coil", "discrete":
		var v []bool
		var err error
		if ch.Register == "coil" {
			v, err = client.ReadCoils(ch.Addr, 1)
		} else {
			v, err = client.ReadDiscreteInputs(ch.Addr, 1)
		}
		if err != nil {
			return "", err
		}
		if len(v) != 1 {
			return "", fmt.Errorf("want 1 bit, got %d: %w", len(v), errParse)
		}
		return strconv.FormatBool(v[0]), nil
	}
	rt := modbus.HOLDING_REGISTER
	if ch.Register == "input" {
		rt = modbus.INPUT_REGISTER
	}
	regs, err := client.ReadRegisters(ch.Addr, registerCount(ch.DataType), rt)
	if err != nil {
		return "", err
	}
	text, err := decodeRegisters(regs, ch.DataType, ch.WordOrder, ch.Scale, ch.Offset)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, errParse)
	}
	return text, nil
}

func (d *Device) pollModbus(client *modbus.ModbusClient, g *pollGroup) error {
	d.pollCtr.Inc()
	ts := d.m.opts.Now().UnixNano()
	batch := make([]telemetry.Sample, 0, len(g.chans))
	for _, ch := range g.chans {
		s := telemetry.Sample{Device: d.spec.Name, Channel: ch.Name, TimeNs: ts, Seq: d.seq.next(ch.Name)}
		text, err := d.readChannel(client, ch)
		if err == nil {
			var perr error
			if s.Value, perr = parseValue(ch.Type, text); perr != nil {
				err = fmt.Errorf("%v: %w", perr, errParse)
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, errParse):
				s.Quality = telemetry.ParseError
			default:
				if fatal := modbusFailure(err); fatal != nil {
					d.m.pub.Publish(batch...)
					return fatal
				}
				s.Quality = telemetry.CommError
			}
			s.Err = clip(fmt.Sprintf("%s %d: %v", ch.Register, ch.Addr, err))
			s.Value = telemetry.Value{}
		}
		batch = append(batch, s)
	}
	d.m.pub.Publish(batch...)
	return nil
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
		err = client.WriteCoil(ch.Addr, on.B)
	case "holding":
		f, _ := strconv.ParseFloat(args[0], 64)
		regs, eerr := encodeRegisters(f, ch.DataType, ch.WordOrder, ch.Scale, ch.Offset)
		if eerr != nil {
			req.reply(Reply{}, fmt.Errorf("command %s: %v: %w", spec.Name, eerr, ErrBadArgument))
			return nil
		}
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
		return d.awaitReadback(req, spec, args, func(ch *ChannelSpec) (string, error) {
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
