"""``python -m liveparams.demo``: a real tiny SFT training whose hyperparameters are changed live.

It starts the local stack, signs up an owner, creates a running job row,
gives the training process a job-scoped token, and trains a tiny model on CPU
with ``RuntimeParameterCallback.from_env(trainer)`` attached — the same one
line a user adds. Meanwhile a scripted user acts through the RPC as a UI
would. At the end it writes a plot and stops the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from liveparams._api import connect, create_job
from liveparams._client_config import ClientConfig
from liveparams._render import live, params_text, requests_table
from liveparams._views import RequestView
from liveparams.credentials import CredentialAdmin
from liveparams.demo.panel import demo_panel, keep_up
from liveparams.demo.plot import Marker, plot_run
from liveparams.demo.scenario import ScriptedUser, default_actions
from liveparams_stack import LocalStack

DEMO_EMAIL = "demo@liveparams.test"
EXPECTED = {"learning_rate": "applied", "weight_decay": "applied", "command": "applied", "beta": "rejected"}


class LiveView:
    """Progress bar, the requests table and the last notes, redrawn together."""

    def __init__(self, max_steps: int) -> None:
        self.progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        self.task = self.progress.add_task("train", total=max_steps, info="")
        self.views: list[RequestView] = []
        self._lock = threading.Lock()

    def set_views(self, views: list[RequestView]) -> None:
        with self._lock:
            self.views = views

    def __rich__(self) -> Group:
        with self._lock:
            return Group(self.progress, requests_table(self.views, title="requests on the job (live, over Realtime)"))


def _recorder(view: LiveView, step_delay: float) -> Any:
    """A callback that records the LR each optimizer step used, the loss, and paces the run."""
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def __init__(self) -> None:
            self.step = 0
            self.lrs: dict[int, float] = {}
            self.losses: dict[int, float] = {}

        def on_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kw: Any) -> None:
            # Before the scheduler steps: this is the LR the optimizer just used for step global_step + 1.
            self.lrs[state.global_step + 1] = float(optimizer.param_groups[0]["lr"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.step = state.global_step
            lr = self.lrs.get(self.step, 0.0)
            view.progress.update(view.task, completed=self.step, info=f"lr {lr:.2e}")
            time.sleep(step_delay)  # a tiny model trains in ~15 ms a step; slow it to a watchable pace

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.losses[state.global_step] = float(logs["loss"])

    return Recorder()


def _create_owner_and_job(stack: LocalStack, password: str) -> tuple[str, str, str]:
    """Sign up an owner through the stack's Auth admin API and create a running job as that owner."""
    from liveparams.users import create_user, sign_in
    from liveparams_stack.keys import ANON_KEY, SERVICE_ROLE_KEY

    owner_id = create_user(stack.api_url, SERVICE_ROLE_KEY, DEMO_EMAIL, password)
    owner_jwt = sign_in(stack.api_url, ANON_KEY, DEMO_EMAIL, password).access_token

    async def owned_job() -> str:
        async with connect(ClientConfig(stack.api_url, ANON_KEY, owner_jwt)) as client:
            job = await create_job(client, "demo", "running", owner_id=None)  # as `liveparams job create` does
        return str(job["id"])

    return owner_id, owner_jwt, asyncio.run(owned_job())


def new_run_folder(output: Path) -> Path:
    """A new, empty ``output/run-N`` for this run's checkpoints (``output`` made if missing).

    Nothing already in ``output`` is removed: it may be a folder of the user's. The plot,
    ``liveparams-demo.png``, is the one file there that a later run replaces.
    """
    output.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        try:
            (output / f"run-{n}").mkdir()
            return output / f"run-{n}"
        except FileExistsError:
            n += 1


def _train(run_dir: Path, max_steps: int, recorder: Any) -> None:
    from liveparams import RuntimeParameterCallback
    from liveparams.demo.tiny import demo_sft_trainer

    trainer = demo_sft_trainer(str(run_dir), max_steps, callbacks=[recorder])
    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))  # the one line a user adds
    trainer.train()


def _quiet_progress_bars() -> None:
    """No bars from saving/loading the tiny model or preparing its dataset: the demo draws its own."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _peaks(views: list[RequestView]) -> dict[int, float]:
    """The peak learning rate from each step on: the configured one, then each applied request's.

    A request applied at the end of step N is first used by step N + 1.
    """
    from liveparams.demo.tiny import DEMO_PEAK_LR

    peaks = {1: DEMO_PEAK_LR}
    for view in views:
        if view.status == "applied" and view.step is not None and "learning_rate" in view.params:
            peaks[view.step + 1] = float(view.params["learning_rate"])
    return peaks


def _check(views: list[RequestView]) -> list[str]:
    """What did not happen as the demo expects (empty when all is well)."""
    problems = []
    for name, status in EXPECTED.items():
        if not any(name in v.params and v.status == status for v in views):
            problems.append(f"no {name} request ended {status}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m liveparams.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="max optimizer steps (the user stops it at 80%%)")
    parser.add_argument("--step-delay", type=float, default=0.08, help="seconds added per step to make it watchable")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("demo-output"),
        help="folder for the plot (liveparams-demo.png, replaced) and the run's checkpoints (a new run-N folder"
        " each time); nothing already in it is deleted (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-up", action="store_true", help="after training, keep the stack and the panel up until Ctrl-C"
    )
    args = parser.parse_args(argv)

    console = Console()
    logging.basicConfig(
        level=logging.WARNING, handlers=[RichHandler(console=console, show_path=False)], format="%(message)s"
    )
    logging.getLogger("liveparams").setLevel(logging.INFO)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_progress_bars()

    run_dir = new_run_folder(args.output)
    state_root = tempfile.mkdtemp(prefix="liveparams-demo-")
    os.chmod(state_root, 0o755)  # PostgreSQL runs as the `postgres` user when the demo runs as root
    stack = LocalStack.on_free_ports(Path(state_root) / "stack", stop_with_caller=True)
    console.rule("liveparams demo")
    console.print(f"starting the local Supabase stack (real PostgreSQL) at {stack.api_url} …")
    with stack:
        password = secrets.token_urlsafe(12)
        owner_id, owner_jwt, job_id = _create_owner_and_job(stack, password)
        env = stack.env()
        panel = demo_panel(console, env, job_id, DEMO_EMAIL, password)
        # What a backend does (`liveparams credential issue`): a trainer credential for this one job.
        credential = CredentialAdmin(env["API_URL"], env["SERVICE_ROLE_KEY"]).issue(job_id)
        os.environ.update(
            JOB_ID=job_id,
            SUPABASE_URL=env["API_URL"],
            SUPABASE_ANON_KEY=env["ANON_KEY"],
            LIVEPARAMS_CREDENTIAL=credential.secret,
        )
        console.print(f"job {job_id} (owner {owner_id[:8]}…); the trainer holds a credential for this job only")

        view = LiveView(args.steps)
        recorder = _recorder(view, args.step_delay)
        user = ScriptedUser(
            ClientConfig(env["API_URL"], env["ANON_KEY"], owner_jwt),
            job_id,
            default_actions(args.steps),
            current_step=lambda: recorder.step,
            on_views=view.set_views,
            on_note=console.print,
        )
        user.start()
        with live(view, console, refresh_per_second=8):
            _train(run_dir, args.steps, recorder)
            views = user.finish()
            view.set_views(views)
        if args.keep_up:
            keep_up(console, panel)
        if panel:
            panel.stop()

    markers = [
        Marker(v.step, params_text(v.params), "applied" if v.status == "applied" else "rejected")
        for v in views
        if v.step is not None
    ]
    markers += [Marker(step, params_text(params), "refused") for step, params in user.refused]
    png = plot_run(recorder.lrs, recorder.losses, markers, args.output / "liveparams-demo.png", _peaks(views))
    shutil.rmtree(state_root, ignore_errors=True)
    # Paths are not wrapped at the terminal's width, so that they can be copied whole.
    console.print(f"plot of learning rate and loss per step: [bold]{png.resolve()}[/]", soft_wrap=True)
    console.print(f"checkpoints of this run: {run_dir.resolve()}", soft_wrap=True)
    console.print("the local stack is stopped.")
    problems = _check(views) + ([f"the scripted user failed: {user.error!r}"] if user.error else [])
    if problems:
        console.print("[red]demo did not go as expected:[/] " + "; ".join(problems))
        return 1
    console.print(
        "[green]✅ every request got its outcome on the row: applied at a step boundary, or rejected with a reason[/]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
