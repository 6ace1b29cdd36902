"""The findings of an outside security probe (issue 22), each shown fixed."""

from __future__ import annotations

import pytest

HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")


# --------------------------------------------------------------- unmatched paths


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/api/v1/nope", 404, "not_found"),
        ("GET", "/api/v1/transfers/x/y", 404, "not_found"),
        ("DELETE", "/api/v1/transfers", 405, "method_not_allowed"),
        ("GET", "/api/v1", 404, "not_found"),
    ],
)
def test_unmatched_api_paths_answer_json_with_the_apis_headers(app, method, path, status, error):
    resp = app.test_client().open(path, method=method)
    assert resp.status_code == status
    assert resp.is_json and resp.get_json()["error"] == error
    assert all(h in resp.headers for h in HEADERS)
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/dashboard/nope", 404, "Niet gevonden"),
        ("GET", "/dashboard/calls/x/y/z", 404, "Niet gevonden"),
        ("PUT", "/dashboard/calls", 405, "Niet toegestaan"),
    ],
)
def test_unmatched_dashboard_paths_answer_its_page_with_its_headers(
    app, method, path, status, words
):
    resp = app.test_client().open(path, method=method)
    assert resp.status_code == status and resp.mimetype == "text/html"
    assert words in resp.get_data(as_text=True)
    assert all(h in resp.headers for h in HEADERS)
    if status == 405:
        assert "GET" in resp.headers["Allow"]


def test_unmatched_voice_paths_still_refuse_unsigned_requests(app):
    assert app.test_client().post("/voice/nope").status_code == 403


def test_other_unmatched_paths_keep_flasks_answer(app):
    resp = app.test_client().get("/nope")
    assert resp.status_code == 404 and "Content-Security-Policy" not in resp.headers
