"""A real one-node SLURM cluster for tests: munged, slurmctld and slurmd, started in a scratch directory.

Debian's packages (`munge`, `slurmctld`, `slurmd`, `slurm-client`; `.ci/run` installs them). The munge key and
socket, the controller's state, the spool, the logs and the pid files live under the given directory; the
daemons are stopped by the pids they wrote. The one file outside it is the configuration, written to
``/etc/slurm/slurm.conf`` (SLURM's compiled-in default): job steps started inside a job (the executor plugin's
nested ``srun``) drop ``SLURM_CONF`` from their environment and would find no cluster otherwise. A configuration
that this module did not write (its first line says so) is never replaced: the cluster then refuses to start.
Munge's socket is named in the configuration (``AuthInfo``), so a munged of the machine is never asked.

The configuration is the smallest a one-machine cluster works with: no cgroups (``proctrack/linuxproc``,
``task/none``), no accounting database (``accounting_storage/none``; job states come from ``squeue``), memory a
consumable resource and enforced by the job accounting poller (``OverMemoryKill``, every second), so a job step
that grows past its ``--mem`` is killed as it would be on a production cluster.

Run ``python tests/slurm_cluster.py DIR`` to start one by hand (Ctrl-C or ``kill`` stops it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
# the first line of a configuration this module wrote (and may replace or remove)
MARK = "# test cluster of sardem's tests/slurm_cluster.py"


def available() -> str | None:
    """None when the SLURM and munge programs are installed and this is root, else what is missing."""
    missing = [name for name in (*DAEMONS, "mungekey", "sbatch", "squeue", "scancel") if not _which(name)]
    if missing:
        return f"not installed: {', '.join(missing)}"
    if os.geteuid() != 0:
        return "needs root (slurmd starts jobs as their user; the configuration goes to /etc/slurm)"
    return None


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _alive(pid: int) -> bool:
    """Whether a process runs (an exited daemon that no init reaps stays a zombie: gone for us)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    """One node (this machine) in one partition, ``main``; ``start`` brings it up, ``stop`` takes it down."""

    root: Path
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    memory_mb: int = 8000
    pids: dict[str, int] = field(default_factory=dict)

    conf: Path = Path("/etc/slurm/slurm.conf")

    @property
    def env(self) -> dict[str, str]:
        """The environment for client commands (and Snakemake) to reach this cluster."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def start(self, timeout_s: float = 60) -> SlurmCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for sub in ("state", "spool", "munge"):
            (self.root / sub).mkdir(exist_ok=True)
        munge = self.root / "munge"
        key = munge / "munge.key"
        if not key.exists():
            subprocess.run([_which("mungekey"), "--create", "--keyfile", str(key)], check=True)
        key.chmod(0o600)
        node = socket.gethostname().split(".")[0]
        text = self._conf_text(node, munge / "munge.sock")
        if self.conf.exists() and not self.conf.read_text().startswith(MARK):
            raise FileExistsError(f"{self.conf}: this machine has its own SLURM configuration; not replacing it")
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(text)
        try:
            self._spawn(
                "munged",
                [
                    "--force",
                    f"--socket={munge / 'munge.sock'}",
                    f"--key-file={key}",
                    f"--pid-file={munge / 'munged.pid'}",
                    f"--log-file={munge / 'munged.log'}",
                    f"--seed-file={munge / 'munged.seed'}",
                ],
                munge / "munged.pid",
            )
            self._spawn("slurmctld", ["-f", str(self.conf)], self.root / "slurmctld.pid")
            self._spawn("slurmd", ["-f", str(self.conf)], self.root / "slurmd.pid")
            self._wait_idle(node, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _conf_text(self, node: str, munge_socket: Path) -> str:
        r = self.root
        ctld, slurmd = _free_port(), _free_port()
        return f"""\
{MARK} in {r}
ClusterName=sardemtest
SlurmctldHost={node}
SlurmctldPort={ctld}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'slurmctld.log'}
SlurmdLogFile={r / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName={node} CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName=main Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""

    def _spawn(self, daemon: str, args: list[str], pidfile: Path) -> None:
        """Start a daemon (it forks into the background) and keep the pid it writes."""
        log = self.root / f"{daemon}.out"
        with open(log, "ab") as out:
            subprocess.run([_which(daemon), *args], stdout=out, stderr=out, check=True, env=self.env, timeout=30)
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                self.pids[daemon] = int(pidfile.read_text().split()[0])
                return
            time.sleep(0.1)
        raise RuntimeError(f"{daemon} wrote no pid file {pidfile}; see {log}")

    def _wait_idle(self, node: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            res = subprocess.run(
                ["sinfo", "--noheader", "--nodes", node, "--format=%T"], env=self.env, capture_output=True, text=True
            )
            state = res.stdout.strip() or res.stderr.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"node {node} not idle after {timeout_s} s (state {state!r}); logs in {self.root}")

    def stop(self) -> None:
        """Stop the daemons this object started (by their pids), slurmd first; wait until they are gone."""
        for daemon in reversed(DAEMONS):
            pid = self.pids.pop(daemon, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(200):
                if not _alive(pid):
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
        if self.conf.exists() and self.conf.read_text().startswith(MARK):
            self.conf.unlink()

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    import sys

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops the daemons too
    with SlurmCluster(Path(sys.argv[1]).resolve()) as cluster:
        print(f"export SLURM_CONF={cluster.conf}  # daemons {cluster.pids}; Ctrl-C stops them", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
