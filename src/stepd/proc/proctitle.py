"""Process names an operator can tell apart: `ps -o pid,comm`, `top` and `/proc/PID/comm`
show `stepd-reactor`, `stepd-worker` and `stepd-horse` instead of a row of `python`."""

from __future__ import annotations

import ctypes

PR_SET_NAME = 15


def set_process_name(name: str) -> None:
    """Name this process (Linux keeps 15 bytes); elsewhere nothing happens."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass
