"""The client against a server with authentication and TLS on: a bearer token
(``token=``), TLS with a private CA and a client certificate (``tls=TLSConfig``),
and the errors a refused caller gets; and ``switchyard-gui``'s TLS options.
Certificates are made here with openssl; tokens with ``switchyard token new``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import _free_port
from switchyard import Client, PermissionDenied, TLSConfig, Unauthenticated


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _pki(d: Path) -> None:
    """ca.pem; server.pem for 127.0.0.1; client.pem with CN py-client."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", "/CN=test CA", "-keyout", "ca-key.pem", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        cn = "test server" if name == "server" else "py-client"
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


def _token(binary: str, name: str, role: str) -> tuple[str, str]:
    out = subprocess.run([binary, "token", "new", "--name", name, "--role", role], check=True,
                         capture_output=True, text=True).stdout
    token, _, entry = out.partition("\n")
    return token, "".join(l + "\n" for l in entry.splitlines() if not l.startswith("#"))


@pytest.fixture(scope="module")
def secure_server(switchyard_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("secure")
    _pki(d)
    tokens = {}
    entries = "tokens:\n"
    for name, role in (("vera", "viewer"), ("otto", "operator")):
        tokens[role], entry = _token(switchyard_bin, name, role)
        entries += entry
    (d / "tokens.yaml").write_text(entries)
    # Simulated instruments and a configuration for them, then the server on it.
    sim = subprocess.Popen([switchyard_bin, "sim", "--scpi", "1", "--lines", "0", "--control", "",
                            "--config-out", str(d / "sim.yaml")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not (d / "sim.yaml").exists() or "devices" not in (d / "sim.yaml").read_text():
        assert sim.poll() is None and time.monotonic() < deadline, "sim did not write its configuration"
        time.sleep(0.1)
    grpc_addr, http_addr = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
    cfg = (d / "sim.yaml").read_text()
    cfg = "\n".join(l for l in cfg.splitlines() if not l.startswith(("listen:", "  grpc:", "  http:")))
    cfg += f"""
listen:
  grpc: {grpc_addr}
  http: {http_addr}
auth:
  tokens_file: tokens.yaml
  certificates:
    - {{name: py-client, role: operator}}
tls:
  cert_file: server.pem
  key_file: server-key.pem
  client_ca_file: ca.pem
"""
    (d / "server.yaml").write_text(cfg)
    log = d / "serve.log"
    with open(log, "wb") as out:
        srv = subprocess.Popen([switchyard_bin, "serve", "--config", str(d / "server.yaml")], stdout=out,
                               stderr=subprocess.STDOUT)
    try:
        ca = (d / "ca.pem").read_bytes()
        deadline = time.monotonic() + 60
        while True:
            assert srv.poll() is None, "serve exited:\n" + log.read_text()
            try:
                with Client(grpc_addr, token=tokens["viewer"], tls=ca, timeout=2) as c:
                    if c.devices():
                        break
            except Exception:  # noqa: BLE001 - not up yet
                pass
            assert time.monotonic() < deadline, "serve not ready:\n" + log.read_text()
            time.sleep(0.2)
        yield {"addr": grpc_addr, "dir": d, "tokens": tokens, "ca": ca, "log": log}
    finally:
        for p in (srv, sim):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_without_token_is_unauthenticated(secure_server):
    with Client(secure_server["addr"], tls=secure_server["ca"]) as c:
        with pytest.raises(Unauthenticated):
            c.devices()


def test_wrong_token_is_unauthenticated(secure_server):
    with Client(secure_server["addr"], token="syt_wrong", tls=secure_server["ca"]) as c:
        with pytest.raises(Unauthenticated):
            c.devices()


def test_viewer_reads_but_may_not_command(secure_server):
    with Client(secure_server["addr"], token=secure_server["tokens"]["viewer"], tls=TLSConfig(ca=secure_server["ca"])) as c:
        assert [d.name for d in c.devices()] == ["psu-01"]
        with pytest.raises(PermissionDenied) as exc:
            c.send_command("psu-01", "set_voltage", 5)
        assert "needs role operator" in str(exc.value)


def test_operator_token_commands(secure_server):
    with Client(secure_server["addr"], token=secure_server["tokens"]["operator"], tls=secure_server["ca"]) as c:
        c.send_command("psu-01", "set_voltage", 5)


def test_client_certificate_is_an_identity(secure_server):
    d = secure_server["dir"]
    tls = TLSConfig(ca=d / "ca.pem", cert=d / "client.pem", key=str(d / "client-key.pem"))
    with Client(secure_server["addr"], tls=tls) as c:
        c.send_command("psu-01", "set_voltage", 6)  # py-client has role operator
        who = c.identity()
        assert (who.name, who.role, who.method, who.authenticated) == ("py-client", "operator", "mtls", True)


def test_plaintext_to_tls_port_fails(secure_server):
    with Client(secure_server["addr"], token=secure_server["tokens"]["viewer"], timeout=3) as c:
        with pytest.raises(Exception):
            c.devices()


def _gui_calls(log: Path, since: int, identity: str, proc: subprocess.Popen[bytes], out: Path) -> list[str]:
    """Waits until the server logged (after the first ``since`` bytes of its
    log) a ListDevices of ``switchyard-gui`` (the Python client) as ``identity``
    that succeeded, and returns every call it logged since."""
    deadline = time.monotonic() + 60
    while True:
        calls = [line for line in log.read_text()[since:].splitlines() if "finished call" in line]
        calls = [line for line in calls if "client=switchyard-python/" in line and f"identity={identity} " in line]
        if any("code=OK" in line and "ListDevices" in line for line in calls):
            return calls
        assert proc.poll() is None, f"switchyard-gui exited with {proc.returncode}:\n{out.read_text()}"
        assert time.monotonic() < deadline, f"no ListDevices of the GUI as {identity} in the server's log:\n" + "\n".join(calls)
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["client certificate", "token over TLS"])
def test_gui_connects_with_tls_options(secure_server, how):
    """switchyard-gui --tls-ca/--tls-cert/--tls-key: the GUI reaches a TLS
    server with a private CA as the mTLS identity of its certificate, or with
    --tls-ca and a token as the token's identity (the server's log of its calls
    names the identity and the Python client)."""
    d = secure_server["dir"]
    args = ["--address", secure_server["addr"], "--tls-ca", str(d / "ca.pem")]
    if how == "client certificate":
        args += ["--tls-cert", str(d / "client.pem"), "--tls-key", str(d / "client-key.pem")]
        identity = "py-client"
    else:
        (d / "gui-token").write_text(secure_server["tokens"]["viewer"] + "\n")
        args += ["--token-file", str(d / "gui-token")]
        identity = "vera"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("SWITCHYARD_TOKEN", None)
    env.pop("SWITCHYARD_TOKEN_FILE", None)
    since = len(secure_server["log"].read_text())
    out = d / f"gui-{how.replace(' ', '-')}.log"
    with open(out, "wb") as f:
        gui = subprocess.Popen([sys.executable, "-m", "switchyard.gui.app", *args], env=env, stdout=f,
                               stderr=subprocess.STDOUT)
    try:
        calls = _gui_calls(secure_server["log"], since, identity, gui, out)
        assert not [c for c in calls if "code=UNAUTHENTICATED" in c or "code=PERMISSION_DENIED" in c], calls
    finally:
        gui.terminate()
        gui.wait(timeout=30)


def test_gui_tls_options_are_checked(secure_server, tmp_path):
    """A client certificate without its key, or a CA file that is not there, is
    a usage error (exit 2) naming the flag, before any connection."""
    d = secure_server["dir"]
    for args, flag in ((["--tls-cert", str(d / "client.pem")], "--tls-cert and --tls-key"),
                       (["--tls-ca", str(tmp_path / "missing.pem")], "--tls-ca")):
        res = subprocess.run([sys.executable, "-m", "switchyard.gui.app", "--address", secure_server["addr"], *args],
                             env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and flag in res.stderr, (args, res.returncode, res.stderr)
