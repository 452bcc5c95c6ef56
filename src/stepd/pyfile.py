"""Importing user code from a .py file given by path (`--tasks`, `configs sync`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


class NotPython(ValueError):
    """The file cannot be loaded as a Python module."""


def import_file(path: Path, name: str) -> ModuleType:
    """Run the file at `path` as the module `name`, registered in `sys.modules` as an
    import does (dataclasses and pickling look a module up there); on an error the
    half-run module is removed again and the error raised."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise NotPython(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
