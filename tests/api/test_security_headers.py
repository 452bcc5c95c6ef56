"""Browser hardening: the UI's and the API pages' Content-Security-Policy and framing
headers, nosniff everywhere, and /docs served from this server alone."""

from __future__ import annotations

import re

from conftest import Api


def test_ui_pages_forbid_inline_script_foreign_origins_and_framing(api: Api) -> None:
    for page in ("/ui/events", "/ui/tasks", "/ui/configs", "/ui/semaphores", "/ui/static/app.js"):
        answer = api.client.get(page)
        assert answer.status_code == 200, page
        policy = answer.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
    missing = api.client.get("/ui/tasks/999999")  # an error page is a page too
    assert missing.status_code == 404 and "content-security-policy" in missing.headers


def test_api_answers_are_never_sniffed(api: Api) -> None:
    for answer in (
        api.client.get("/api/v1/events"),
        api.client.post("/api/v1/events", json={"events": []}),  # 401, no token
        api.client.get("/openapi.json"),
        api.client.get("/healthz"),
    ):
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_api_pages_load_only_files_this_server_serves(api: Api) -> None:
    for page in ("/docs", "/redoc"):
        answer = api.client.get(page)
        assert answer.status_code == 200
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["x-frame-options"] == "DENY"
        html = answer.text
        assert "<script>" not in html and "cdn" not in html.lower()
        urls = re.findall(r'(?:src|href|spec-url|data-openapi-url)="([^"]+)"', html)
        assert len(urls) >= 3, html
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            fetched = api.client.get(url)
            assert fetched.status_code == 200, url
            assert len(fetched.content) > 100, url
