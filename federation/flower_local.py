"""A real Flower deployment on loopback: one SuperLink, one SuperNode per owner, ``flwr run``.

Used by ``twinsim federate --deployment flower`` and the integration test. Every process is
started in its own session (so stopping one stops the SuperExec and app processes it spawned)
with the venv's ``bin`` first on PATH and a private ``FLWR_HOME``. Each SuperNode is given
only its own merchant folder (``--node-config merchant-folder=...``) and, if given, its own
``seed`` (reproducible tests only). ``secure_aggregation=True`` submits the run with
``secure-aggregation=true`` (Flower SecAgg+, :mod:`federation.flower_secagg`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from federation.training import RoundSettings

__all__ = ["APP_DIR", "LocalFlower", "free_port"]

APP_DIR = Path(__file__).resolve().parent / "flower"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


class LocalFlower:
    """Context manager: ``with LocalFlower(folders, work) as fl: fl.run(settings)``."""

    def __init__(self, folders: Mapping[str, Path], work_dir: str | Path, *,
                 seeds: Mapping[str, int] | None = None) -> None:
        self.folders = {k: Path(v).resolve() for k, v in folders.items()}
        self.seeds = dict(seeds or {})
        self.work = Path(work_dir).resolve()
        self.bin = Path(sys.executable).parent
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.env = {**os.environ, "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
                    "FLWR_HOME": str(self.work / "flwr_home"), "PYTHONUNBUFFERED": "1"}

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self._logs[name] = (self.work / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen([str(self.bin / args[0]), *args[1:]], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.work, start_new_session=True)

    def start(self) -> LocalFlower:
        self.work.mkdir(parents=True, exist_ok=True)
        home = self.work / "flwr_home"
        home.mkdir(exist_ok=True)
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "twinsim"\n\n[superlink.twinsim]\n'
            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n', encoding="utf-8")
        self._spawn("superlink", ["flower-superlink", "--insecure", "--port", str(self.port),
                                  "--database", str(self.work / "superlink.db")])
        _wait_port(self.port, 60)
        for name, folder in self.folders.items():
            node_cfg = f"merchant-folder='{folder}'"
            if name in self.seeds:
                node_cfg += f" seed={int(self.seeds[name])}"
            self._spawn(f"supernode-{name}", [
                "flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{self.port}",
                "--port", str(free_port()), "--node-config", node_cfg])
        return self

    def submit(self, settings: RoundSettings, *, out_dir: str | Path,
               min_nodes: int | None = None, round_timeout: float = 120.0,
               secure_aggregation: bool = False) -> Path:
        """Submit the Flower app with ``flwr run``; returns the ServerApp's output folder."""
        out = Path(out_dir).resolve()
        cfg = (f"rounds={settings.rounds} target-epsilon={settings.target_epsilon} "
               f"expected-batch={settings.expected_batch} "
               f"steps-per-round={settings.steps_per_round} weighting='{settings.weighting}' "
               f"round-timeout={round_timeout} "
               f"min-nodes={min_nodes or len(self.folders)} out-dir='{out}' "
               f"secure-aggregation={'true' if secure_aggregation else 'false'}")
        subprocess.run([str(self.bin / "flwr"), "run", str(APP_DIR), "twinsim",
                        "--run-config", cfg], env=self.env, cwd=self.work, check=True,
                       capture_output=True, timeout=120)
        return out

    def wait(self, out: Path, *, timeout: float = 600.0) -> dict[str, Any]:
        """Wait for the ServerApp's ``result.json`` and return it."""
        deadline = time.monotonic() + timeout
        while not (out / "result.json").is_file():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {out / 'result.json'} after {timeout:.0f} s; see the logs "
                                   f"in {self.work}")
            time.sleep(0.5)
        for _ in range(20):  # written in one call; wait until it parses
            try:
                return dict(json.loads((out / "result.json").read_text(encoding="utf-8")))
            except json.JSONDecodeError:
                time.sleep(0.25)
        raise ValueError(f"{out / 'result.json'}: not valid JSON")

    def run(self, settings: RoundSettings, *, out_dir: str | Path, min_nodes: int | None = None,
            round_timeout: float = 120.0, timeout: float = 600.0,
            secure_aggregation: bool = False) -> dict[str, Any]:
        out = self.submit(settings, out_dir=out_dir, min_nodes=min_nodes,
                          round_timeout=round_timeout, secure_aggregation=secure_aggregation)
        return self.wait(out, timeout=timeout)

    def stop_process(self, name: str) -> None:
        """Stop one process (and whatever it spawned) — e.g. a SuperNode, to test disconnects."""
        p = self.procs.pop(name, None)
        log = self._logs.pop(name, None)
        try:
            if p is not None and p.poll() is None:
                self._terminate(p)
        finally:
            if log is not None:
                log.close()

    @staticmethod
    def _terminate(p: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(p.pid, signal.SIGTERM)  # its own session: its group id is its pid
            p.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)

    def stop(self) -> None:
        for name in [n for n in self.procs if n.startswith("supernode-")] + ["superlink"]:
            self.stop_process(name)

    def __enter__(self) -> LocalFlower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
