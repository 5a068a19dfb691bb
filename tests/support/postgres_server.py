"""A throw-away PostgreSQL server for the tests: Debian's `postgresql` binaries, a fresh data directory,
listening on 127.0.0.1 only, stopped and removed afterwards. `make test` installs the package when the
binaries are missing; without them the tests that need a server fail (they do not skip)."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

USER, DATABASE = "optuna", "optuna"


def bin_dir() -> Path:
    """The directory of `initdb`/`pg_ctl`: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL server binaries not found: `make test` installs them (apt-get install "
                           "postgresql); or install Debian's postgresql package")
    return Path(versions[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` account then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def run(cmd: list[str]) -> None:
    done = subprocess.run(as_server_user(cmd), capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")


def postgres_server() -> Iterator[str]:
    """Start a server, yield its URL (`postgresql://optuna@127.0.0.1:PORT/optuna`), stop it."""
    binaries = bin_dir()
    home = Path(tempfile.mkdtemp(prefix="pg-tests-"))
    data, sockets = home / "data", home / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    try:
        run([str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync", "-E", "UTF8"])
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        run([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "server.log"), "-w",
             "-t", "60", "start"])
        try:
            run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE])
            yield f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"
        finally:
            run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(home, ignore_errors=True)
