"""A cgroup-v1 memory group for a benchmark: made with a limit under this process's own group, entered by a
launcher before it execs, read (usage, peak, failcnt, oom_kill), removed; and a sampler of each process's peak
RSS in it. Used by bench/bench_memory_ceiling.py."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

CGROUP_MEMORY = Path("/sys/fs/cgroup/memory")


class MemoryGroup:
    """One cgroup-v1 memory group: made with a limit, entered by a launcher before it execs, read, removed."""

    def __init__(self, name: str, limit: int) -> None:
        self.path = self.parent() / name
        self.limit = limit

    @staticmethod
    def parent() -> Path:
        """This process's own memory group (a group made under it stays inside whatever holds this process)."""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            if "memory" in controllers.split(","):
                return CGROUP_MEMORY / rel.lstrip("/")
        return CGROUP_MEMORY

    def create(self) -> str | None:
        """Make the group; None, or the sentence saying why it cannot be made here."""
        if not (CGROUP_MEMORY / "cgroup.procs").exists():
            return (f"There is no cgroup-v1 memory controller at {CGROUP_MEMORY} on this machine, so the server "
                    "cannot be put under a memory ceiling: nothing was measured.")
        try:
            self.path.mkdir()
            (self.path / "memory.limit_in_bytes").write_text(str(self.limit))
        except OSError as err:
            if self.path.exists():
                self.path.rmdir()
            return (f"The cgroup-v1 memory controller is not writable here ({err.strerror} at {self.path}; it "
                    "needs root and a controller of one's own), so the server cannot be put under a memory "
                    "ceiling: nothing was measured.")
        return None

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` started by a shell that first moves itself into the group, then execs: every process the
        server starts (the Dask nanny and its worker) is born inside."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *argv]

    def _int(self, name: str) -> int:
        return int((self.path / name).read_text())

    def read(self) -> dict:
        oom = dict(line.split() for line in (self.path / "memory.oom_control").read_text().splitlines())
        return {"limit": self._int("memory.limit_in_bytes"), "usage": self._int("memory.usage_in_bytes"),
                "max_usage": self._int("memory.max_usage_in_bytes"), "failcnt": self._int("memory.failcnt"),
                "oom_kill": int(oom.get("oom_kill", 0)), "under_oom": int(oom.get("under_oom", 0))}

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def remove(self) -> None:
        """Remove the group once the processes this benchmark started in it have ended."""
        for _ in range(100):
            if not self.pids():
                break
            time.sleep(0.2)
        for pid in self.pids():   # only ours can be in it: it was made for this run
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.2)
        print(f"could not remove {self.path}")


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class Monitor(threading.Thread):
    """Samples every process in the group: each one's peak RSS (the kernel's VmHWM, kept per pid, so a process
    that has gone keeps its last reading) and the group's usage."""

    def __init__(self, group: MemoryGroup) -> None:
        super().__init__(daemon=True, name="monitor")
        self.group = group
        self.hwm: dict[int, int] = {}
        self.cmd: dict[int, str] = {}
        self.usage_peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(0.25)

    def sample(self) -> None:
        for pid in self.group.pids():
            hwm = status_kb(pid, "VmHWM")
            self.hwm[pid] = max(self.hwm.get(pid, 0), hwm)
            if pid not in self.cmd:
                try:
                    self.cmd[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
                except OSError:
                    self.cmd[pid] = "?"
        try:
            self.usage_peak = max(self.usage_peak, self.group.read()["usage"])
        except OSError:
            pass
