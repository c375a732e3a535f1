"""`pip install` from the wheel works: build it with python -m build, install it
into a fresh venv, and use it there against a running server."""

import shutil
import subprocess
import sys
import venv

import pytest

from conftest import REPO


def _run(*args, **kw):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{args[:4]}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.timeout(600)
def test_wheel_installs_into_a_fresh_venv_and_talks_to_the_server(demo, tmp_path):
    dist = tmp_path / "dist"
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
    src = tmp_path / "src"
    shutil.copytree(REPO / "clients" / "python", src,
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "tests"))
    _run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, src)
    wheels = list(dist.glob("switchyard_client-*.whl"))
    assert len(wheels) == 1, wheels
    env = tmp_path / "venv"
    # A fresh venv: pip installs the wheel and the dependencies it declares
    # (grpcio, protobuf, googleapis-common-protos) from the package index.
    venv.create(env, with_pip=True)
    py = env / "bin" / "python"
    _run(py, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheels[0])
    script = f"""
import asyncio, switchyard, switchyard.v1.device_pb2_grpc, pathlib
assert pathlib.Path(switchyard.__file__).is_relative_to({str(env)!r}), switchyard.__file__
assert (pathlib.Path(switchyard.__file__).parent / "py.typed").exists()
assert (pathlib.Path(switchyard.v1.device_pb2_grpc.__file__).with_suffix(".pyi")).exists()
with switchyard.Client({demo.grpc_addr!r}) as c:
    print(switchyard.__version__, c.identity().server_version, len(c.devices()))
async def main():
    async with switchyard.AsyncClient({demo.grpc_addr!r}) as c:
        return len(await c.devices())
print(asyncio.run(main()))
"""
    out = _run(py, "-c", script, cwd=tmp_path)
    version, server_version, n, n_async = out.stdout.split()
    import switchyard

    assert version == switchyard.__version__ and server_version and (n, n_async) == ("24", "24")
