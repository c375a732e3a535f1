from switchyard import Client, InvalidArgument

with Client("127.0.0.1:7400") as sy:
    print(len(sy.devices()), "devices:", [d.name for d in sy.devices()][:3], "...")
    sy.send_command("psu-01", "set_voltage", 24)
    try: sy.send_command("psu-01", "set_voltage", 99)
    except InvalidArgument as err: print("refused:", err.message)
    for batch in (sub := sy.subscribe("psu-01", ["voltage", "setpoint"])):
        print(*(f"{s.channel}#{s.seq}={s.value}" for s in batch.samples))
        if len(sub.last_seqs()) == 2: break
