"""The web panel in real headless Chromium, against the stack, while a real tiny training runs (issue 21).

Debian's ``chromium`` driven by Playwright for Python (``executable_path``: Playwright's own
browser download is not used). Everything the test checks is on the page as a person sees it:
the chart's points and markers, the request history, the form's refusal, the trainer's state.
Screenshots (desktop, phone width, dark) go to ``test-artifacts/panel/``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from auth_helpers import auth_client
from presence_helpers import TRAINER_PRESENCE, tracked
from realtime import RealtimeSubscribeStates

from liveparams._panel import PanelConfig, PanelServer
from liveparams._supabase import create_client

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "panel"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TRAINER = Path(__file__).with_name("panel_trainer.py")
STEPS, STEP_DELAY_S = 3000, 0.05  # far more than the test needs: the run ends by the panel's Stop
WAIT_MS = 90_000  # how long a page may take to show something on a loaded 2-core machine
PHONE = {"width": 390, "height": 844}
# True once the chart fits the viewport and each marker's tooltip, shown by focusing it, lies inside the chart.
TIPS_INSIDE_THE_CHART = """viewport => {
  const chart = document.querySelector('.chart').getBoundingClientRect();
  if (chart.right > viewport) return false;
  return [...document.querySelectorAll('.marker')].every((marker) => {
    marker.focus();
    const tip = marker.querySelector('.tip').getBoundingClientRect();
    return tip.width > 0 && tip.left >= chart.left && tip.right <= chart.right;
  });
}"""
# A marker as a person meets it: its hit target's width, and its head's glyph and shape (not its colour).
MARKER_HEAD = """marker => {
  const head = getComputedStyle(marker, '::after');
  return {width: marker.getBoundingClientRect().width, glyph: head.content, shape: [head.borderRadius, head.clipPath]};
}"""
PRESENCE_SETTLE_MS = 2000  # after the page is live, how long to let a Presence it should not show arrive

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(600)]


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    password: str
    token: str


@pytest.fixture
def person(stack_env: dict[str, str]) -> Callable[[], Person]:
    """A confirmed user with a password (the admin API), as a person who signs in to the panel."""

    def create() -> Person:
        email, password = f"{uuid.uuid4().hex[:12]}@liveparams.test", uuid.uuid4().hex
        admin = auth_client(stack_env, stack_env["SERVICE_ROLE_KEY"]).admin
        user = admin.create_user({"email": email, "password": password, "email_confirm": True}).user
        session = auth_client(stack_env, stack_env["ANON_KEY"]).sign_in_with_password(
            {"email": email, "password": password}
        )
        assert session.session is not None
        return Person(user.id, email, password, session.session.access_token)

    return create


@pytest.fixture
def panel_url(stack_env: dict[str, str]) -> Iterator[str]:
    server = PanelServer(PanelConfig(stack_env["API_URL"], stack_env["ANON_KEY"]), port=0).start()
    yield server.url
    server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (scripts/setup.sh installs it)")
    expect.set_options(timeout=WAIT_MS)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def start_trainer(stack_env: dict[str, str], job_id: str, token: str, output: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "JOB_ID": job_id,
        "SUPABASE_URL": stack_env["API_URL"],
        "SUPABASE_ANON_KEY": stack_env["ANON_KEY"],
        "LIVEPARAMS_TOKEN": token,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for name in ("SUPABASE_SERVICE_ROLE_KEY", "SERVICE_ROLE_KEY"):  # the trainer acts with its job token only
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, str(TRAINER), str(output), str(STEPS), str(STEP_DELAY_S)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sign_in(page: Any, url: str, who: Person) -> None:
    page.goto(url)
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Password").fill(who.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text(who.email)


def points(page: Any) -> int:
    return int(page.locator(".chart").get_attribute("data-points") or 0)


def wait_points(page: Any, at_least: int) -> None:
    page.wait_for_function(
        "n => Number(document.querySelector('.chart')?.dataset.points || 0) >= n", arg=at_least, timeout=WAIT_MS
    )


def metrics_seen_by(stack_env: dict[str, str], job_id: str, owner: Person, other: Person) -> dict[str, Any]:
    """Owner and other user on the job's private metrics topic (and the other's REST reads), until the owner got 2."""

    async def run() -> dict[str, Any]:
        got: dict[str, list[Any]] = {"owner": [], "other": []}
        states: dict[str, list[str]] = {"owner": [], "other": []}
        clients = {
            name: await create_client(stack_env["API_URL"], stack_env["ANON_KEY"], who.token)
            for name, who in (("owner", owner), ("other", other))
        }
        try:
            rest = {
                table: (await clients["other"].table(table).select("*").eq(column, job_id).execute()).data
                for table, column in (("training_metrics", "job_id"), ("local_training_jobs", "id"))
            }
            for name, client in clients.items():
                channel = client.channel(f"job-metrics:{job_id}", {"config": {"private": True}})
                channel.on_broadcast("metrics", lambda message, name=name: got[name].append(message))
                await channel.subscribe(lambda state, error, name=name: states[name].append(str(state)))
            while len(got["owner"]) < 2:
                await asyncio.sleep(0.1)
        finally:
            for client in clients.values():
                await client.realtime.close()
        return {"rest": rest, "other_messages": got["other"], "other_states": states["other"]}

    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(asyncio.run(asyncio.wait_for(run(), WAIT_MS / 1000))))
    thread.start()
    thread.join()
    return result


def test_a_person_steers_a_live_run_from_the_panel(
    stack_env: dict[str, str],
    panel_url: str,
    browser: Any,
    person: Callable[[], Person],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    tmp_path: Path,
) -> None:
    owner, other = person(), person()
    name = f"panel run {uuid.uuid4().hex[:6]}"
    job_id = new_job(owner.id, name=name)
    trainer = start_trainer(stack_env, job_id, job_token(job_id), tmp_path / "run")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        contacted: list[str] = []
        page.on("request", lambda request: contacted.append(request.url))
        page.on("websocket", lambda socket: contacted.append(socket.url))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        sign_in(page, panel_url, owner)
        page.get_by_role("link", name=name).click()
        expect(page.locator("#trainer")).to_have_text("trainer: attached")
        wait_points(page, 3)
        wait_points(page, points(page) + 12)  # the loss curve grows while we watch

        lr_before = float(page.locator(".chart").get_attribute("data-last-learning-rate") or "nan")
        page.get_by_label("learning_rate", exact=True).fill("1e-4")
        page.get_by_role("button", name="Send").click()
        applied = page.locator("ol.history li[data-status=applied]").filter(has_text="learning_rate=")
        expect(applied).to_contain_text(re.compile(r"applied at step \d+: learning_rate: \S+ → 1\.00e-04"))
        step = int(re.search(r"applied at step (\d+)", applied.inner_text()).group(1))  # type: ignore[union-attr]
        marker = page.locator(f".marker-applied[data-step='{step}']")
        expect(marker).to_have_count(1)
        expect(marker.locator(".tip")).to_contain_text("→ 1.00e-04")
        # The learning-rate line moves: the rate logged after the change is a tenth of the peak's share.
        page.wait_for_function(
            "lr => Number(document.querySelector('.chart').dataset.lastLearningRate) < lr / 2",
            arg=lr_before,
            timeout=WAIT_MS,
        )
        page.get_by_label("learning_rate", exact=True).fill("5")
        page.keyboard.press("Enter")  # from the keyboard: Enter in a field sends the form
        refusal = page.locator("form.controls .form-message")
        expect(refusal).to_contain_text("Refused: ")
        expect(refusal).to_contain_text("out of range")
        expect(page.locator(".marker-refused")).to_have_count(1)
        expect(page.locator("ol.history li[data-status=refused]")).to_contain_text("learning_rate=5")
        wait_points(page, points(page) + 10)  # a stretch at the new rate, for the picture
        marker.focus()  # from the keyboard its tooltip shows, as for a pointer
        expect(marker.locator(".tip")).to_be_visible()
        page.keyboard.press("Escape")  # hides it without moving the focus (WCAG 1.4.13) ...
        expect(marker.locator(".tip")).to_be_hidden()
        expect(marker).to_be_focused()
        redrawn = page.locator("#trainer").element_handle()  # the page redraws it on each of the trainer's heartbeats
        page.wait_for_function("badge => !badge.isConnected", arg=redrawn, timeout=WAIT_MS)
        expect(marker).to_be_focused()  # a redraw keeps the marker, its focus and its tooltip hidden
        expect(marker.locator(".tip")).to_be_hidden()
        refused = page.locator(".marker-refused")
        refused.focus()
        marker.focus()  # ... until the next focus
        expect(marker.locator(".tip")).to_be_visible()
        # Each marker is a target 24 px wide or more, and its head tells its kind by glyph and shape, not colour alone.
        heads = {kind: seen.evaluate(MARKER_HEAD) for kind, seen in (("applied", marker), ("refused", refused))}
        assert all(head["width"] >= 24 for head in heads.values()), heads
        assert heads["applied"]["glyph"] != heads["refused"]["glyph"], heads
        assert heads["applied"]["shape"] != heads["refused"]["shape"], heads
        page.screenshot(path=str(ARTIFACTS / "panel-desktop.png"), full_page=True)
        page.screenshot(path=str(ARTIFACTS / "panel-mid-run.png"))  # the top of the page: docs/panel-mid-run.png

        page.set_viewport_size(PHONE)
        # At phone width every marker's tooltip stays inside the chart, wherever the marker sits.
        page.wait_for_function(TIPS_INSIDE_THE_CHART, arg=PHONE["width"], timeout=WAIT_MS)
        marker.focus()
        page.screenshot(path=str(ARTIFACTS / "panel-phone.png"), full_page=True)
        dark = browser.new_context(viewport=PHONE, color_scheme="dark")
        dark_page = dark.new_page()
        sign_in(dark_page, panel_url + f"#/job/{job_id}", owner)
        wait_points(dark_page, 3)
        expect(dark_page.locator(f".marker-applied[data-step='{step}']")).to_have_count(1)
        dark_page.wait_for_function(TIPS_INSIDE_THE_CHART, arg=PHONE["width"], timeout=WAIT_MS)
        dark_page.locator(f".marker-applied[data-step='{step}']").focus()
        dark_page.screenshot(path=str(ARTIFACTS / "panel-phone-dark.png"), full_page=True)
        dark.close()

        # Another person sees neither the job nor its metrics: not in the panel, not over REST or Realtime.
        stranger = browser.new_context().new_page()
        sign_in(stranger, panel_url, other)
        expect(stranger.locator("#jobs")).to_contain_text("No jobs yet")
        stranger.goto(panel_url + f"#/job/{job_id}")
        expect(stranger.get_by_role("alert")).to_contain_text("not found")
        seen = metrics_seen_by(stack_env, job_id, owner, other)
        assert seen["rest"] == {"training_metrics": [], "local_training_jobs": []}
        assert seen["other_messages"] == []

        page.set_viewport_size({"width": 1280, "height": 1000})
        page.get_by_role("button", name="Pause", exact=True).click()
        paused = page.locator("ol.history li[data-status=applied]").filter(has_text="command=pause")
        expect(paused).to_contain_text("pause done")
        at = int(re.search(r"applied at step (\d+)", paused.inner_text()).group(1))  # type: ignore[union-attr]
        expect(page.locator("#trainer")).to_have_text(f"trainer: paused at step {at}")
        page.get_by_role("button", name="Resume", exact=True).click()
        expect(page.locator("#trainer")).to_have_text("trainer: attached")
        # A restart-only setting: the trainer restarts in-process, and the page says where and how long it took.
        expect(page.locator("#restart")).to_have_count(0)
        page.get_by_label("learning_rate", exact=True).fill("")  # the refused 5 is still in the form
        page.get_by_label("per_device_train_batch_size", exact=True).fill("4")
        page.get_by_role("button", name="Send").click()
        restarted = page.locator("ol.history li[data-status=applied]").filter(has_text="per_device_train_batch_size=")
        expect(restarted).to_contain_text("per_device_train_batch_size: 8 → 4")
        at = int(re.search(r"applied at step (\d+)", restarted.inner_text()).group(1))  # type: ignore[union-attr]
        took = re.compile(rf"^last restart: restarted in-process at step {at} with per_device_train_batch_size=4 in ")
        expect(page.locator("#restart")).to_have_text(took)
        seconds = float(re.search(r"in (\S+) s$", page.locator("#restart").inner_text()).group(1))  # type: ignore[union-attr]
        assert seconds > 0
        wait_points(page, points(page) + 5)  # it trains on, with the new batch size
        dark = browser.new_context(viewport=PHONE, color_scheme="dark")
        dark_page = dark.new_page()
        sign_in(dark_page, panel_url + f"#/job/{job_id}", owner)
        expect(dark_page.locator("#restart")).to_have_text(took)
        wait_points(dark_page, 3)
        wait_points(dark_page, points(dark_page) + 10)  # live points past the restart, for the picture
        dark_page.screenshot(path=str(ARTIFACTS / "panel-restart.png"))  # the top of the page: docs/panel-restart.png
        dark.close()
        page.get_by_role("button", name="Rewind", exact=True).click()  # it loses steps, so it asks first too
        rewinding = page.get_by_role("dialog", name="Rewind to a checkpoint?", exact=False)
        expect(rewinding).to_be_visible()
        rewinding.get_by_role("button", name="Cancel").click()
        expect(rewinding).to_be_hidden()
        stop, dialog = page.get_by_role("button", name="Stop", exact=True), page.get_by_role("dialog")
        stop.click()
        expect(dialog).to_be_visible()  # Stop asks first; Escape answers no
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        stop.click()
        dialog.get_by_role("button", name="Stop the run").click()
        assert trainer.wait(timeout=WAIT_MS / 1000) == 0
        expect(page.locator("#trainer")).to_contain_text("detached: stopped")
        expect(page.locator("ol.history li[data-status=applied]").filter(has_text="command=stop")).to_contain_text(
            "stop done"
        )
        expect(page.locator("ol.history li").filter(has_text="command=rewind")).to_have_count(0)  # it was cancelled
        page.get_by_role("link", name="all jobs").click()
        expect(page.locator(f"tr[data-job-id='{job_id}']")).to_contain_text("detached: stopped")
        page.screenshot(path=str(ARTIFACTS / "panel-jobs.png"))
        # At phone width the header row is hidden: each cell says its column's name before its value, for the
        # eye and for a screen reader; on a desk the header row names the columns.
        trainer_cell = page.locator(f"tr[data-job-id='{job_id}'] td").nth(1)
        label = "cell => getComputedStyle(cell, '::before').content"
        assert trainer_cell.evaluate(label) == "none"
        page.set_viewport_size(PHONE)
        expect(page.locator("table.jobs thead")).to_be_hidden()
        assert trainer_cell.evaluate(label) == '"Trainer: "'
        expect(trainer_cell).to_have_accessible_name(re.compile(r"^Trainer: detached: stopped"))
        page.screenshot(path=str(ARTIFACTS / "panel-jobs-phone.png"))

        stack_hosts = {urlsplit(panel_url).netloc, urlsplit(stack_env["API_URL"]).netloc}
        outside = [url for url in contacted if urlsplit(url).netloc not in stack_hosts]
        assert outside == [], f"the panel contacted something outside the stack: {outside}"
        assert errors == []
    finally:
        if trainer.poll() is None:
            trainer.kill()
        output = trainer.communicate()[0]
        if trainer.returncode not in (0, None):
            print(output[-4000:])


def test_the_page_says_disconnected_retrying_and_recovers_by_itself(
    panel_url: str,
    browser: Any,
    person: Callable[[], Person],
    new_job: Callable[..., str],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
) -> None:
    owner = person()
    job_id = new_job(owner.id, name="through an outage")
    page = browser.new_context().new_page()
    sign_in(page, panel_url + f"#/job/{job_id}", owner)
    connection = page.locator("#connection")
    expect(connection).to_be_visible()
    expect(connection).to_have_text("live")

    faults("close_sockets", code=1011)
    expect(connection).to_contain_text("disconnected, retrying")
    request_update(owner.token, job_id, {"weight_decay": 0.05})  # made while the page is away
    expect(connection).to_have_text("live")
    expect(page.locator("ol.history li[data-status=pending]")).to_contain_text("weight_decay=0.05")


def test_on_a_static_host_without_config_json_the_page_asks_for_the_project(
    stack_env: dict[str, str], browser: Any, person: Callable[[], Person]
) -> None:
    """The same files with no ``config.json`` beside them (docs/panel.md): the person names the project once."""
    server = PanelServer(None, port=0).start()
    try:
        page = browser.new_context().new_page()
        page.goto(server.url)
        page.get_by_label("Project URL").fill(stack_env["API_URL"])
        page.get_by_label("Publishable key").fill(stack_env["ANON_KEY"])
        page.get_by_role("button", name="Use this project").click()
        sign_in(page, server.url, person())  # remembered by the browser: the sign-in form comes next
        expect(page.locator("#jobs")).to_contain_text("No jobs yet")
        expect(page.locator("#jobs code")).to_have_text("liveparams job create")  # a command, not `backticks`
        # A project stored with a typo is not for ever: the sign-in form offers to change it ...
        page.get_by_role("button", name="Sign out").click()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "panel-sign-in-stored-project.png"))
        page.get_by_role("button", name="Change project").click()
        expect(page.get_by_label("Project URL")).to_have_value("")
        assert page.evaluate("() => localStorage.getItem('liveparams-panel-config')") is None
        # ... and one the client cannot even use (not a URL) brings the form back, saying why.
        page.evaluate("() => localStorage.setItem('liveparams-panel-config', JSON.stringify({url: 'nope', key: 'k'}))")
        page.reload()
        expect(page.get_by_role("alert")).to_contain_text("This project cannot be used")
        expect(page.get_by_label("Project URL")).to_be_visible()
    finally:
        server.stop()


def test_the_panel_names_its_views_and_says_what_happens_to_a_screen_reader(
    panel_url: str,
    browser: Any,
    person: Callable[[], Person],
    new_job: Callable[..., str],
    request_update: Callable[..., dict[str, Any]],
    db: Any,
) -> None:
    """What a keyboard or screen-reader user needs, on a job with no trainer: the tab's title and the focus follow
    the view, a decided request and the trainer's state are announced, a command says it is sending (and cannot be
    sent twice meanwhile), Rewind takes a checkpoint step, and the fields' edges are seen in both themes."""
    owner = person()
    name = f"a11y {uuid.uuid4().hex[:6]}"
    job_id = new_job(owner.id, name=name)
    page = browser.new_context().new_page()
    sign_in(page, panel_url, owner)
    expect(page).to_have_title("Jobs – liveparams")
    page.get_by_role("link", name=name).click()
    expect(page).to_have_title(f"{name} – liveparams")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    expect(page.locator("#connection")).to_have_text("live")

    # `checkpoint` goes with Rewind only: no field of its own, a step in Rewind's confirmation.
    expect(page.get_by_label("learning_rate", exact=True)).to_be_visible()
    expect(page.locator("[data-param=checkpoint]")).to_have_count(0)
    page.get_by_role("button", name="Rewind", exact=True).click()
    rewinding = page.get_by_role("dialog", name="Rewind to a checkpoint?", exact=False)
    rewinding.get_by_label("Checkpoint step").fill("7")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "panel-rewind-checkpoint.png"))
    rewinding.get_by_role("button", name="Rewind the run").click()
    rewind = page.locator("ol.history li[data-status=pending]").filter(has_text="command=rewind")
    expect(rewind).to_contain_text("checkpoint=7")

    # A command button says "sending…" and cannot be pressed again until the answer comes.
    held: list[Any] = []
    page.route("**/rpc/request_parameter_update", lambda route: held.append(route))
    save = page.get_by_role("button", name="Save checkpoint")
    save.click()
    commands = page.get_by_role("group", name="Commands")
    expect(commands.locator(".form-message")).to_have_text("sending…")
    expect(save).to_be_disabled()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    while not held:  # the request is held until the page has been seen waiting for it
        page.wait_for_timeout(50)
    held[0].continue_()
    page.unroute("**/rpc/request_parameter_update")
    expect(commands.locator(".form-message")).to_have_text("Save checkpoint: sent.")
    expect(save).to_be_enabled()

    # The outcome of a request and the trainer's state changes are announced, each once, in one status region.
    announced = page.locator("#announcements[role=status]")
    stored = request_update(owner.token, job_id, {"weight_decay": 0.05})
    expect(page.locator("ol.history li[data-status=pending]").filter(has_text="weight_decay=0.05")).to_have_count(1)
    db.execute(
        "update public.parameter_update_requests set status = 'applied', step = 120, decided_at = now(),"
        """ changes = '{"weight_decay": {"old": 0.01, "new": 0.05}}' where job_id = %s and id = %s""",
        (job_id, stored["id"]),
    )
    expect(announced).to_contain_text(f"#{stored['seq']} applied at step 120: weight_decay: 0.01 → 0.05")
    db.execute(
        "update public.local_training_jobs set trainer_attached_at = now(), trainer_seen_at = now() where id = %s",
        (job_id,),
    )
    expect(announced).to_contain_text("trainer: attached")
    expect(announced.locator("p")).to_have_count(2)

    # The fields' edges: 3:1 or more against the card (WCAG 1.4.11), light and dark.
    contrast = """() => {
      const linear = (c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      const lum = (css) => css.match(/[\\d.]+/g).slice(0, 3).map((c) => linear(c / 255))
        .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
      const edge = lum(getComputedStyle(document.querySelector('form.controls input')).borderTopColor);
      const card = lum(getComputedStyle(document.querySelector('.card')).backgroundColor);
      return (Math.max(edge, card) + 0.05) / (Math.min(edge, card) + 0.05);
    }"""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert page.evaluate(contrast) >= 3, scheme

    page.get_by_role("link", name="all jobs").click()
    expect(page).to_have_title("Jobs – liveparams")
    expect(page.get_by_role("heading", level=1)).to_be_focused()


def test_the_jobs_list_calls_a_trainer_gone_by_the_databases_heartbeat_bound(
    panel_url: str, browser: Any, person: Callable[[], Person], new_job: Callable[..., str], db: Any
) -> None:
    """The panel judges a heartbeat's age by ``liveparams_trainer_stale_seconds()`` (55 s), as `job end` does:
    a trainer heard from 30 s ago is attached, one silent for 65 s is gone (its machine vanished). Both are read
    from the same rendering: with a longer bound of its own, the page would call the second one attached."""
    owner = person()
    heard, silent = new_job(owner.id, name="heard 30 s ago"), new_job(owner.id, name="silent 65 s")
    for job_id, age_s in ((heard, 30), (silent, 65)):
        db.execute(
            "update public.local_training_jobs set trainer_attached_at = now() - interval '10 minutes',"
            " trainer_seen_at = now() - make_interval(secs => %s) where id = %s",
            (age_s, job_id),
        )
    page = browser.new_context().new_page()
    sign_in(page, panel_url, owner)
    expect(page.locator(f"tr[data-job-id='{heard}'] td.attached")).to_have_text("attached")
    assert page.locator(f"tr[data-job-id='{silent}'] td").nth(1).inner_text() == "silent (no heartbeat)"


def test_the_jobs_list_follows_a_burst_of_changes_from_their_payloads_with_no_request(
    panel_url: str,
    browser: Any,
    person: Callable[[], Person],
    new_job: Callable[..., str],
    request_update: Callable[..., dict[str, Any]],
    db: Any,
) -> None:
    """Each heartbeat is a job-row UPDATE: the list takes it, the trainer's step it carries (``trainer_step``),
    and a decided request, from the Realtime payload.

    The 15 s re-judge of a heartbeat's age reads nothing. During a burst of heartbeats every ~50 ms the page
    shows the decision, the trainer's state and its step while the burst goes on (a wait restarted by each
    change would hold them until it ends), and makes no REST call: no read of the list again per change
    (1 + 2 per job each time), and no read of the job's last step per heartbeat."""
    owner = person()
    beating, decided = new_job(owner.id, name="beating"), new_job(owner.id, name="decided")
    request_update(owner.token, decided, {"learning_rate": 1e-4})  # pending: not a change the list shows
    page = browser.new_context().new_page()
    rest: list[str] = []
    page.on("request", lambda request: rest.append(request.url) if "/rest/v1/" in request.url else None)
    sign_in(page, panel_url, owner)
    trainer = page.locator(f"tr[data-job-id='{beating}'] td").nth(1)
    step = page.locator(f"tr[data-job-id='{beating}'] td").nth(2)
    change = page.locator(f"tr[data-job-id='{decided}'] td").nth(3)
    expect(trainer).to_have_text("no trainer yet")
    expect(change).to_have_text("—")

    rest.clear()  # a heartbeat 6 s short of the database's bound: attached, then silent by the re-judge alone
    db.execute(
        "update public.local_training_jobs set trainer_attached_at = now(), trainer_step = 3, trainer_seen_at = now()"
        " - make_interval(secs => public.liveparams_trainer_stale_seconds() - 6) where id = %s",
        (beating,),
    )
    expect(trainer).to_have_text("attached")
    expect(step).to_have_text("3")
    expect(trainer).to_have_text("silent (no heartbeat)", timeout=30_000)
    assert rest == []

    def burst() -> None:
        for beat in range(200):
            db.execute(
                "update public.local_training_jobs set trainer_seen_at = now(), trainer_step = %s where id = %s",
                (10 + beat, beating),
            )
            if beat == 20:
                db.execute(
                    "update public.parameter_update_requests set status = 'applied', step = 7, decided_at = now(),"
                    ' changes = \'{"learning_rate": {"old": 0.001, "new": 0.0001}}\' where job_id = %s',
                    (decided,),
                )
            time.sleep(0.05)

    rest.clear()
    beats = threading.Thread(target=burst)
    beats.start()
    try:
        expect(change).to_have_text("applied at step 7: learning_rate: 1.00e-03 → 1.00e-04")
        expect(trainer).to_have_text("attached")
        expect(step).not_to_have_text("3")
        assert beats.is_alive(), "the list changed only once the burst was over"
    finally:
        beats.join()
    expect(step).to_have_text("209")  # the last heartbeat's step
    page.wait_for_timeout(1000)  # what the last heartbeats bring
    assert rest == []

    rest.clear()  # a new job comes first, and goes, from the change alone (it has no metrics nor requests yet)
    fresh = new_job(owner.id, name="fresh")
    expect(page.locator("table.jobs tbody tr").first).to_have_attribute("data-job-id", fresh)
    expect(page.locator(f"tr[data-job-id='{fresh}']")).to_contain_text("no trainer yet")
    db.execute("delete from public.local_training_jobs where id = %s", (fresh,))
    expect(page.locator(f"tr[data-job-id='{fresh}']")).to_have_count(0)
    expect(page.locator("table.jobs tbody tr")).to_have_count(2)
    assert rest == []


def test_the_jobs_list_shows_a_trainer_without_a_step_on_its_row_at_its_newest_metrics_point(
    panel_url: str, browser: Any, person: Callable[[], Person], new_job: Callable[..., str], db: Any
) -> None:
    """An attached trainer whose row holds no step (an agent from before ``trainer_step``): the list's read
    takes its newest stored metrics point, once; its heartbeats then cost no read, and a step on the row wins."""
    owner = person()
    older = new_job(owner.id, name="older agent")
    db.execute(
        "update public.local_training_jobs set trainer_attached_at = now(), trainer_seen_at = now() where id = %s",
        (older,),
    )
    db.execute(
        "insert into public.training_metrics (job_id, step, metrics) values (%s, 16, '{}'), (%s, 17, '{}')",
        (older, older),
    )
    page = browser.new_context().new_page()
    rest: list[str] = []
    page.on("request", lambda request: rest.append(request.url) if "/rest/v1/" in request.url else None)
    sign_in(page, panel_url, owner)
    step = page.locator(f"tr[data-job-id='{older}'] td").nth(2)
    expect(step).to_have_text("17")
    assert len([url for url in rest if "/rest/v1/training_metrics" in url]) == 1, rest

    rest.clear()
    for _ in range(3):
        db.execute("update public.local_training_jobs set trainer_seen_at = now() where id = %s", (older,))
    db.execute("update public.local_training_jobs set trainer_step = 40 where id = %s", (older,))
    expect(step).to_have_text("40")
    assert rest == []


def test_only_the_jobs_trainer_shows_as_attached_on_its_owners_page(
    stack_env: dict[str, str],
    panel_url: str,
    browser: Any,
    person: Callable[[], Person],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
) -> None:
    """The job's channel is private: a stranger holding the publishable key and the job's id who tracks a
    ``trainer`` on its topic never shows on the owner's page; the job's own trainer does."""
    owner = person()
    job_id = new_job(owner.id, name="a private channel")
    page = browser.new_context().new_page()
    fake = {"trainer": "attached", "since": "a stranger's"}
    with tracked(stack_env, stack_env["ANON_KEY"], job_id, private=False, track=fake) as stranger:
        assert stranger.joined[0] is RealtimeSubscribeStates.SUBSCRIBED
        sign_in(page, panel_url + f"#/job/{job_id}", owner)
        expect(page.locator("#connection")).to_have_text("live")
        page.wait_for_timeout(PRESENCE_SETTLE_MS)  # the page had the topic's Presence by now
        expect(page.locator("#trainer")).to_have_text("trainer: no trainer yet")
        with tracked(stack_env, job_token(job_id), job_id, private=True, track=TRAINER_PRESENCE):
            expect(page.locator("#trainer")).to_have_text("trainer: attached")


@pytest.mark.parametrize("project", ["without the channel's policies", "private channels only"])
def test_the_panel_is_live_and_shows_the_trainer_where_the_project_puts_it(
    project: str,
    request: pytest.FixtureRequest,
    stack_env: dict[str, str],
    panel_url: str,
    browser: Any,
    person: Callable[[], Person],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    """A database without the channel's policies refuses the private join: the page joins the public channel, as
    earlier versions did (the trainer is there too). A project that allows private channels only (hosted Realtime
    with "Allow public access" off) refuses every public join: the page needs none. Either way it is live: it
    shows the trainer, and a new request as it is made; and so is the jobs list, on its user's channel."""
    private = project == "private channels only"
    if private:
        request.getfixturevalue("faults")("private_only", enabled=True)
    else:
        request.getfixturevalue("older_database")
    owner = person()
    job_id = new_job(owner.id, name=project)
    page = browser.new_context().new_page()
    with tracked(stack_env, job_token(job_id), job_id, private=private, track=TRAINER_PRESENCE):
        sign_in(page, panel_url + f"#/job/{job_id}", owner)
        expect(page.locator("#connection")).to_have_text("live")
        expect(page.locator("#trainer")).to_have_text("trainer: attached")
    request_update(owner.token, job_id, {"weight_decay": 0.05})
    expect(page.locator("ol.history li[data-status=pending]")).to_contain_text("weight_decay=0.05")

    page.get_by_role("link", name="← all jobs").click()  # the jobs list, on its own channel
    expect(page.locator(f"tr[data-job-id='{job_id}']")).to_be_visible()  # read once subscribed
    fresh = new_job(owner.id, name="made while the list is open")
    expect(page.locator(f"tr[data-job-id='{fresh}']")).to_contain_text("no trainer yet")
