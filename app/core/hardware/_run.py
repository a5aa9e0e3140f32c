"""Run a probe command or function with a hard time limit that a hung driver cannot defeat.

`subprocess.run(timeout=…)` kills only the direct child and then waits for the pipes to
close, which never happens when a grandchild (a wrapper script's `sleep`, a stuck driver
helper) still holds them. Here the command runs in its own process group and the whole
group is killed on timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CommandResult:
    ok: bool  # ran and exited 0
    stdout: str
    stderr: str
    returncode: int | None  # None: not started or timed out
    error: str | None  # in words, when not ok


def run_command(args: list[str], timeout: float) -> CommandResult:
    """Run `args` (no shell), capture text output, kill its process group after `timeout` s."""
    kwargs: dict[str, Any] = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True
    else:  # pragma: no cover - Windows
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            **kwargs,
        )
    except FileNotFoundError:
        return CommandResult(False, "", "", None, f"{args[0]} is not installed")
    except OSError as exc:
        return CommandResult(False, "", "", None, f"{args[0]} could not start: {exc}")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            proc.communicate(timeout=0.5)
        except (subprocess.TimeoutExpired, ValueError, OSError):
            pass
        return CommandResult(False, "", "", None, f"{args[0]} did not answer within {timeout:g} s")
    if proc.returncode != 0:
        detail = (err or out).strip().splitlines()
        why = detail[-1] if detail else f"exit status {proc.returncode}"
        return CommandResult(False, out, err, proc.returncode, f"{args[0]} failed: {why}")
    return CommandResult(True, out, err, 0, None)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        try:
            proc.kill()
        except OSError:
            pass


def call_with_timeout(fn: Callable[[], T], timeout: float) -> tuple[bool, T | BaseException | None]:
    """Call `fn` in a daemon thread; (True, result), (False, exception) or (False, None) on timeout.

    A call that never returns (NVML stuck in the kernel driver) is abandoned: the daemon
    thread cannot keep the process alive at exit.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="ponder-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return False, None
    if "error" in box:
        return False, box["error"]
    return True, box.get("result")
