"""``liveparams panel``: what it serves, what it never hands a browser, what a checkout without the build says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from liveparams import panel
from liveparams.cli import main
from liveparams.jobs import JobError
from liveparams.panel import PanelConfig, PanelServer
from liveparams_stack.keys import ANON_KEY, SERVICE_ROLE_KEY

URL = "http://127.0.0.1:54321"


@pytest.fixture
def served() -> Iterator[str]:
    server = PanelServer(PanelConfig(URL, ANON_KEY), port=0).start()
    yield server.url
    server.stop()


def test_the_page_gets_the_project_and_may_talk_to_it_only(served: str) -> None:
    config = httpx.get(served + "config.json")
    assert config.json() == {"url": URL, "key": ANON_KEY}
    page = httpx.get(served)
    assert '<script type="module" src="panel.js">' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "connect-src 'self' http://127.0.0.1:54321 ws://127.0.0.1:54321;" in policy
    assert "default-src 'self'" in policy
    assert httpx.get(served + "panel.js").status_code == 200


def test_the_environment_names_the_cli_reads_configure_it() -> None:
    config = PanelConfig.from_env({"API_URL": URL + "/", "ANON_KEY": ANON_KEY})
    assert config == PanelConfig(URL, ANON_KEY)
    assert PanelConfig.from_env({}) is None  # the page then asks for the project


@pytest.mark.parametrize("key", [SERVICE_ROLE_KEY, "sb_secret_abc"])
def test_a_secret_key_is_never_handed_to_a_browser(key: str) -> None:
    with pytest.raises(JobError, match=r"public \(anon/publishable\) key only"):
        PanelConfig.from_env({"SUPABASE_URL": URL, "SUPABASE_ANON_KEY": key})


def test_a_checkout_without_the_build_says_how_to_build_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(panel, "ASSETS", tmp_path)
    monkeypatch.setenv("SUPABASE_URL", URL)
    monkeypatch.setenv("SUPABASE_ANON_KEY", ANON_KEY)
    assert main(["panel", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "scripts/setup.sh" in err and "node panel/build.mjs" in err


def test_a_port_in_use_is_one_sentence(served: str) -> None:
    port = httpx.URL(served).port
    with pytest.raises(JobError, match=f"cannot serve the panel on 127.0.0.1:{port}"):
        PanelServer(None, port=port)


def test_without_a_project_the_page_is_served_and_asks() -> None:
    server = PanelServer(None, port=0).start()
    try:
        assert httpx.get(server.url + "config.json").status_code == 404  # the page shows its project form
        assert httpx.get(server.url).status_code == 200
    finally:
        server.stop()
