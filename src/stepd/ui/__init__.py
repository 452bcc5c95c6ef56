"""The web UI: server-rendered pages (Jinja2) on the same services as the JSON API."""
