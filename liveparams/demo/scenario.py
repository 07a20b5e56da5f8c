"""The demo's scripted user: acts on the job exactly as a UI would, through the RPC with the owner's JWT.

It runs on its own thread and event loop, like a browser tab would run
elsewhere: it watches the row over Realtime (that is how it sees outcomes
appear) and makes requests when training reaches given steps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from liveparams._api import connect, request_update
from liveparams._client_config import ClientConfig
from liveparams._exceptions import CommandError
from liveparams._live import watch_job
from liveparams._views import JobView, RequestView, summarize


@dataclass(frozen=True)
class Action:
    """Make ``params`` once training has passed ``at_step``; ``note`` is shown in the live view."""

    at_step: int
    params: dict[str, Any]
    note: str


def default_actions(max_steps: int) -> list[Action]:
    """What the demo's user does, spread over the run."""
    at = lambda fraction: max(1, int(max_steps * fraction))  # noqa: E731
    return [
        Action(at(0.20), {"learning_rate": 3e-4}, "lower the learning rate (new peak, schedule kept)"),
        Action(at(0.35), {"weight_decay": 0.1}, "raise weight decay"),
        Action(at(0.50), {"command": "save_checkpoint"}, "ask for a checkpoint now"),
        Action(at(0.60), {"learning_rate": -1}, "an invalid learning rate (refused by the RPC)"),
        Action(at(0.62), {"beta": 0.5}, "beta, which SFT does not have (rejected by the trainer)"),
        Action(at(0.80), {"command": "stop"}, "stop gracefully (checkpoint first)"),
    ]


class ScriptedUser:
    """Plays ``actions`` against the job on a background thread.

    Args:
        config (`ClientConfig`): URL, anon key and the owner's access token.
        job_id (`str`): the job.
        actions (`list[Action]`): what to do, in step order.
        current_step (`Callable[[], int]`): the training's global step (read-only).
        on_views (`Callable[[list[RequestView]], None]`): called with the request table whenever the row changes.
        on_note (`Callable[[str], None]`): called with a line to show (what was asked, what was refused).
    """

    def __init__(
        self,
        config: ClientConfig,
        job_id: str,
        actions: list[Action],
        current_step: Callable[[], int],
        on_views: Callable[[list[RequestView]], None],
        on_note: Callable[[str], None],
    ) -> None:
        self._config = config
        self._job_id = job_id
        self._actions = actions
        self._current_step = current_step
        self._on_views = on_views
        self._on_note = on_note
        self._done = threading.Event()
        self._views: list[RequestView] = []
        self.error: BaseException | None = None
        self.refused: list[tuple[int, dict[str, Any]]] = []  # (step, params) the RPC refused
        self._thread = threading.Thread(target=self._run, name="liveparams.demo-user", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self, settle_timeout: float = 10.0) -> list[RequestView]:
        """Wait until every request has an outcome (or ``settle_timeout``), stop, return the final table."""
        self._done.set()
        self._thread.join(settle_timeout + 5)
        return list(self._views)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # shown by the demo; the training must not be taken down by it
            self.error = exc

    async def _main(self) -> None:
        stop = asyncio.Event()

        def on_view(job: JobView) -> None:
            self._views = summarize(job)
            self._on_views(self._views)

        async with connect(self._config) as client:
            watcher = asyncio.create_task(watch_job(client, self._job_id, on_view, stop))
            for action in self._actions:
                while self._current_step() < action.at_step and not self._done.is_set():
                    await asyncio.sleep(0.02)
                if self._done.is_set():
                    break
                try:
                    stored = await request_update(client, self._job_id, action.params)
                    self._on_note(
                        f"step ~{self._current_step()}: requested {action.params} — {action.note} [{stored['id'][:8]}]"
                    )
                except CommandError as exc:
                    self.refused.append((self._current_step(), action.params))
                    self._on_note(f"step ~{self._current_step()}: {action.params} refused by the server: {exc}")
            await asyncio.to_thread(self._done.wait)
            await self._settle()
            stop.set()
            await watcher

    async def _settle(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and any(view.status == "pending" for view in self._views):
            await asyncio.sleep(0.05)
