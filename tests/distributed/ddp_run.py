"""One rank of a 2-process DDP run (started by ``torchrun``; see test_ddp.py).

Rank 0 alone has an update source, scripted to queue learning-rate changes
mid-run (in mode ``no-source`` no rank has one, as when ``JOB_ID`` is unset).
Every rank writes its final weights, the rates it used, how many broadcasts
it made during the steps and what liveparams logged, so the test can compare replicas.

Mode ``faults`` injects the two failures that used to split or hang the ranks:
applying weight decay raises on rank 1 only (step 3), and rank 0 cannot encode
the requests it must send (step 5); a plain change follows (step 7).

In mode ``rank0-only`` rank 1 has no callback at all (a launcher that dropped it there).

Mode ``pause`` makes ``broadcast``'s first change while paused: a pause at step 3, held for
``PAUSE_ROUNDS`` rounds (far longer than ``SHORT_TIMEOUT``, the timeout of the group liveparams
exchanges over, which is the only one any rank could wait in while all hold), the change, resume.
Mode ``pause-lost`` pauses at step 3 and nothing resumes it: a few rounds in, rank 0's source
can no longer receive (as when its credential is revoked); every rank must go on, together.

Usage: torchrun --nproc_per_node 2 ddp_run.py MODEL_DIR OUT_DIR
    {broadcast|no-broadcast|no-source|faults|rank0-only|pause|pause-lost}
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

import torch
import torch.distributed as dist
from hooks_helpers import LrRecorder, PushAt, QueueSource, plain_trainer, request, training_args
from rank_life import leave_together, watch_for_hangs
from transformers import TrainerCallback

from liveparams import RuntimeParameterCallback
from liveparams.trainer_hooks import _distributed, get_applier

FAULTY_NORM = 0.77  # rank 0 fails to encode a batch holding this max_grad_norm
SHORT_TIMEOUT = timedelta(seconds=3)
PAUSE_ROUNDS = 12  # x HOLD_ROUND_S on each side of the change: about 12 s paused in all


def inject_faults(rank: int) -> None:
    if rank == 1:

        def broken(value: Any, ctx: Any) -> None:
            raise RuntimeError("apply failed on this rank only")

        get_applier("weight_decay").apply = broken  # type: ignore[method-assign]
    else:
        encode = _distributed._encode

        def failing(requests: list[Any]) -> bytes:
            if any(r.params.get("max_grad_norm") == FAULTY_NORM for r in requests):
                raise RuntimeError("cannot encode")
            return encode(requests)

        _distributed._encode = failing


class BroadcastCounter(TrainerCallback):
    """Counts broadcasts between train begin and train end (added after the callback).

    Those of ``torch.distributed``, and the headers rank 0 posts (``RankSync.post`` sends its
    asynchronous broadcast through the process group itself).
    """

    PATCHED = ((dist, "broadcast"), (dist, "broadcast_object_list"), (_distributed.RankSync, "post"))

    def __init__(self) -> None:
        self.count = 0
        self.originals: list[tuple[Any, str, Callable[..., Any]]] = []

    def _counting(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)

        return counted

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for owner, name in self.PATCHED:
            self.originals.append((owner, name, getattr(owner, name)))
            setattr(owner, name, self._counting(getattr(owner, name)))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for owner, name, original in self.originals:
            setattr(owner, name, original)


class LossRecorder(TrainerCallback):
    """The loss Trainer logged at each step (``logging_steps=1``)."""

    def __init__(self) -> None:
        self.losses: dict[int, float] = {}

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.losses[state.global_step] = logs["loss"]


class LogLines(logging.Handler):
    """What liveparams logged on this rank (INFO and up)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def main(model_dir: str, out_dir: str, mode: str) -> None:
    watch_for_hangs()
    rank = int(os.environ["RANK"])
    _distributed.EXCHANGE_EVERY_S = 0.0  # an exchange at every boundary: taken at step k, applied at k + 1
    logs = LogLines()
    logging.getLogger("liveparams").addHandler(logs)
    logging.getLogger("liveparams").setLevel(logging.INFO)
    source = QueueSource() if rank == 0 and mode != "no-source" else None
    callback = RuntimeParameterCallback(source, sync_ranks=mode != "no-broadcast")
    recorder, counter, losses = LrRecorder(), BroadcastCounter(), LossRecorder()
    callbacks = [recorder, callback, counter, losses]
    if mode == "rank0-only":
        _distributed.PRESENCE_TIMEOUT_S = 3.0  # how long rank 0 waits for the missing one
        if rank == 1:
            callbacks.remove(callback)
    if mode == "faults":
        inject_faults(rank)
        schedule = {
            3: [request(learning_rate=5e-3, weight_decay=0.3)],
            5: [request(max_grad_norm=FAULTY_NORM)],
            7: [request(learning_rate=2e-4)],
        }
    else:
        schedule = {3: [request(learning_rate=5e-3)], 6: [request(learning_rate=2e-4, weight_decay=0.3)]}
    if mode == "pause-lost":
        schedule = {3: [request(command="pause")], 6: [request(learning_rate=2e-4, weight_decay=0.3)]}
        if source is not None:
            source.receives_for = 4
    if mode == "pause":
        # Groups made from now on (liveparams' own, at train begin) time out after SHORT_TIMEOUT.
        dist.distributed_c10d.default_pg_timeout = SHORT_TIMEOUT
        # Made in the order they arrive (`seq` says which is newer): broadcast's, with a pause around the first.
        pause, change, resume = request(command="pause"), request(learning_rate=5e-3), request(command="resume")
        schedule = {3: [pause], 6: [request(learning_rate=2e-4, weight_decay=0.3)]}
        if source is not None:
            waiting: list[list[Any]] = [[] for _ in range(PAUSE_ROUNDS)]
            source.while_paused = [*waiting, [change], *waiting, [resume]]
    if source is not None:
        callbacks.insert(0, PushAt(source, schedule))
    args = training_args(Path(out_dir) / "trainer", max_steps=10, ddp_backend="gloo", weight_decay=0.01)
    trainer = plain_trainer(model_dir, args, callbacks)
    trainer.train()
    weights = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    result = {
        "weights": weights,
        "lrs": recorder.first_group(),
        "weight_decay": recorder.weight_decay,
        "step_broadcasts": counter.count,
        "max_grad_norm": trainer.args.max_grad_norm,
        "log_lines": logs.lines,
        "losses": losses.losses,
        "outcomes": [(o.status.value, o.step, o.reason) for o in source.outcomes] if source else [],
    }
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    leave_together()


if __name__ == "__main__":
    main(*sys.argv[1:4])
