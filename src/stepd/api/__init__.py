"""The HTTP API (FastAPI), thin: parse, call a service, render."""
