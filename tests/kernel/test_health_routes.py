"""switchboard.http.health_routes: /healthz answers, /readyz names what fails."""

from __future__ import annotations

from flask import Flask

from switchboard.http import failure, health_routes, probe


def app_with(problems: dict[str, str], details: dict[str, object] | None = None) -> Flask:
    app = Flask(__name__)
    health_routes(app, lambda: dict(problems), (lambda: details) if details else None)
    return app


def test_readyz_is_200_without_problems_and_shows_the_details() -> None:
    client = app_with({}, {"storage": "folder"}).test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"ready": True, "problems": {}, "storage": "folder"}


def test_readyz_is_503_naming_each_problem_while_healthz_stays_ok() -> None:
    client = app_with({"database": "refused", "worker": "not running"}).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {
        "ready": False,
        "problems": {"database": "refused", "worker": "not running"},
    }
    assert client.get("/healthz").status_code == 200


def test_a_failure_without_a_message_is_named_by_its_type() -> None:
    assert failure(TimeoutError()) == "TimeoutError"
    assert failure(OSError("refused")) == "refused"


def test_a_probe_names_its_check_only_when_it_fails() -> None:
    def refused() -> None:
        raise ConnectionRefusedError("refused")

    assert probe("database", lambda: None) == {}
    assert probe("database", refused) == {"database": "refused"}
