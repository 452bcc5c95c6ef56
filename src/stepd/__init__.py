"""stepd: an open event-driven task orchestrator, compatible with the STEP API."""

__version__ = "0.1.0"
