"""The GPU check: a live learning-rate change under bf16, fused AdamW, a cosine schedule and accumulation.

What the restart-equivalence suite proves on CPU, checked where users train: on CUDA with
``bf16=True``, ``optim="adamw_torch_fused"``, ``lr_scheduler_type="cosine"`` and gradient
accumulation 2, on a randomly initialised Llama sized by ``--width``/``--layers``.

1. **The rule.** Run A gets ``learning_rate`` ×0.5 live after step S; run B is started with it.
   From step S+1 on, every optimizer step of A must use exactly B's rate (``==``), and both
   must end at the same step.
2. **The log.** At every step the rate Trainer logged equals the rate that step used.
3. **Throughput.** Steady-state time per optimizer step without the callback, with it idle,
   and with it applying a learning-rate change every 10 steps: the runs alternate after a
   warm-up, best of ``--repeats``, and the table gives each as a ratio to the run without.

Run: ``python benchmarks/gpu_check.py`` on a CUDA machine (a few minutes on one GPU). Without
CUDA the same settings run on CPU (bf16 autocast, PyTorch's CPU fused AdamW), slowly at the
default size; ``--quick`` makes it a smoke run whose timings mean nothing. Exits 1 when check 1
or 2 fails.

**Several GPUs** (``--ranks N``, one command: it starts itself under ``torchrun`` with N
processes, DDP over NCCL, one GPU each; gloo on CPU without CUDA). Rank 0 alone has the
source; the change applies at the exchange after the one that took it (docs/architecture.md,
"Several processes"), so check 1 compares the steps after the step it applied at, on every
rank. Added: **4. Agreement.** Every rank used the same rate at every step, applied the change
at the same step, ended at the same step and holds the same weights. The throughput table
gains the time the training thread spends inside the callback's ``on_step_end`` (its mean per
step, on the slowest rank): the per-step price of rank agreement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import transformers
from rich.console import Console
from rich.table import Table
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from liveparams import RuntimeParameterCallback
from liveparams.contract import DRAIN_MAX_ITEMS, OutcomeStatus, UpdateOutcome, UpdateRequest

PEAK, CHANGED = 1e-3, 5e-4
CHANGE_AFTER = 20  # step S of check 1
APPLY_EVERY = 10  # steps between changes in the "applying" throughput run
TIMED_FROM = 10  # steady state: the step the throughput clock starts at


class ScriptedSource:
    """An in-memory ``UpdateSource`` fed by the run itself (``PushAt``); nothing leaves the process."""

    job_id = "gpu-check"

    def __init__(self) -> None:
        self.queued: list[UpdateRequest] = []
        self.outcomes: list[UpdateOutcome] = []
        self._seq = 0

    def push(self, **params: Any) -> None:
        self._seq += 1
        stamp = "2026-11-28T00:00:00.000Z"
        self.queued.append(UpdateRequest(id=f"r{self._seq}", params=params, requested_at=stamp, seq=self._seq))

    def drain(self, max_items: int = DRAIN_MAX_ITEMS) -> list[UpdateRequest]:
        if not self.queued:
            return []
        taken, self.queued = self.queued[:max_items], self.queued[max_items:]
        return taken

    def report(self, outcomes: Iterable[UpdateOutcome]) -> None:
        self.outcomes.extend(outcomes)

    def publish_metrics(self, step: int, metrics: Any) -> None:
        """Metrics are not part of this check."""

    def start(self, replay_after_step: int | None = None) -> None:
        """Nothing to connect to."""

    def wait_initial_read(self, timeout: float | None = None) -> bool:
        return True

    def record_end(self, reason: str, step: int | None = None) -> None:
        """Nobody watches a job row here."""

    def close(self, timeout: float | None = None) -> None:
        """Nothing to flush."""


class PushAt(TrainerCallback):
    """Queues a learning-rate request at the end of chosen steps (runs before the callback under test)."""

    def __init__(self, source: ScriptedSource, rates: dict[int, float]) -> None:
        self.source, self.rates = source, rates

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step in self.rates:
            self.source.push(learning_rate=self.rates[state.global_step])


class Recorder(TrainerCallback):
    """The rate each optimizer step used, the wall time of the steady-state steps, and the time inside our hook."""

    def __init__(self, timed_from: int) -> None:
        self.used: dict[int, float] = {}
        self.timed_from = timed_from
        self.clock: list[float] = []  # [start, end] in seconds, synchronised with the device
        self.hook_us: list[float] = []  # wall time of each call of the callback's on_step_end

    def time_hook(self, live: RuntimeParameterCallback) -> None:
        """Clock ``live.on_step_end`` on the training thread (what each step boundary waits for)."""
        hook = live.on_step_end

        def clocked(*args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            hook(*args, **kwargs)
            self.hook_us.append((time.perf_counter() - start) * 1e6)

        live.on_step_end = clocked  # type: ignore[method-assign]

    def on_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        self.used[state.global_step + 1] = float(optimizer.param_groups[0]["lr"])

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step in (self.timed_from, state.max_steps):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.clock.append(time.perf_counter())

    def ms_per_step(self, max_steps: int) -> float:
        return (self.clock[-1] - self.clock[0]) / (max_steps - self.timed_from) * 1e3


class RandomTokens(torch.utils.data.Dataset):
    """Seeded random token ids, labels = inputs: the rule and the timing need no real text."""

    def __init__(self, rows: int, length: int, vocab: int) -> None:
        self.ids = torch.randint(0, vocab, (rows, length), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def build_model(width: int, layers: int, vocab: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=layers,
        num_attention_heads=max(width // 64, 1),
        max_position_embeddings=1024,
    )
    return LlamaForCausalLM(config)


def run(
    opts: argparse.Namespace, out: str, max_steps: int, peak: float, rates: dict[int, float] | None, log: bool = False
) -> tuple[Recorder, Trainer, ScriptedSource]:
    """One training run; ``rates=None`` is the run without our callback. ``log``: log every step
    (the rule check compares the logged rate); timed runs do not, as a log reads values off the device."""
    source, recorder = ScriptedSource(), Recorder(min(TIMED_FROM, max_steps - 1))
    callbacks: list[TrainerCallback] = [recorder]
    live: RuntimeParameterCallback | None = None
    if rates is not None:
        live = RuntimeParameterCallback(source)
        recorder.time_hook(live)
        callbacks = [PushAt(source, rates), recorder, live]
    args = TrainingArguments(
        output_dir=out,
        max_steps=max_steps,
        per_device_train_batch_size=opts.batch,
        gradient_accumulation_steps=2,
        learning_rate=peak,
        lr_scheduler_type="cosine",
        warmup_steps=5,
        weight_decay=0.01,
        bf16=True,
        optim="adamw_torch_fused",
        logging_steps=1 if log else 10**6,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=0,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        ddp_backend=("nccl" if torch.cuda.is_available() else "gloo") if world_size() > 1 else None,
    )
    trainer = Trainer(
        model=build_model(opts.width, opts.layers, opts.vocab),
        args=args,
        train_dataset=RandomTokens(max_steps * opts.batch * 2, opts.length, opts.vocab),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # the tables are the output
    if live is not None:
        live.bind(trainer)
    trainer.train()
    return recorder, trainer, source


def world_size() -> int:
    """Processes of this run: more than one under ``torchrun`` (``--ranks``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def every_rank(value: Any) -> list[Any]:
    """``value`` from every rank, in rank order (``[value]`` in a single process)."""
    if world_size() == 1:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def weights_checksum(model: Any) -> float:
    return float(sum(p.detach().double().sum().item() for p in model.parameters()))


def check_the_rule(opts: argparse.Namespace, out: str) -> tuple[Table, bool]:
    live, live_trainer, source = run(opts, out, opts.steps, PEAK, {CHANGE_AFTER: CHANGED}, log=True)
    reference, ref_trainer, _ = run(opts, out, opts.steps, CHANGED, {}, log=True)
    # Rank 0 alone has the source: its outcomes are every rank's.
    applied = [(o.status, o.step) for o in every_rank(source.outcomes)[0] if o.status is OutcomeStatus.APPLIED]
    at = applied[0][1] if applied else CHANGE_AFTER
    after = [s for s in live.used if s > at]
    mismatched = [s for s in after if live.used[s] != reference.used.get(s)]
    logged = {int(e["step"]): e["learning_rate"] for e in live_trainer.state.log_history if "learning_rate" in e}
    log_off = [s for s, lr in logged.items() if lr != live.used.get(s)]
    same_end = live_trainer.state.global_step == ref_trainer.state.global_step
    # Single process: applied at the boundary that took it. Several: at a later one, known to every rank in advance.
    right_step = at == CHANGE_AFTER if world_size() == 1 else at > CHANGE_AFTER
    ranks = every_rank((live.used, live_trainer.state.global_step, weights_checksum(live_trainer.model)))
    agreed = all(r == ranks[0] for r in ranks)
    ok = len(applied) == 1 and right_step and not mismatched and not log_off and same_end and agreed
    ok = all(every_rank(ok))

    table = Table(
        title=f"learning_rate {PEAK:g} -> {CHANGED:g} live after step {CHANGE_AFTER} vs a run started with it"
        + (f", {world_size()} ranks" if world_size() > 1 else "")
    )
    table.add_column("check")
    table.add_column("result", justify="right")
    table.add_row("outcome", ", ".join(f"{status.value} at step {step}" for status, step in applied) or "none")
    table.add_row(
        f"steps {at + 1}..{max(after, default=0)}: rate == reference", f"{len(after) - len(mismatched)}/{len(after)}"
    )
    if mismatched:
        first = mismatched[0]
        table.add_row(f"first difference (step {first})", f"{live.used[first]!r} vs {reference.used.get(first)!r}")
    table.add_row("logged rate == rate used", f"{len(logged) - len(log_off)}/{len(logged)}")
    table.add_row("end step (live, reference)", f"{live_trainer.state.global_step}, {ref_trainer.state.global_step}")
    if world_size() > 1:
        table.add_row("every rank: same rates, end step and weights", "yes" if agreed else "NO")
    table.add_row("verdict", "PASS" if ok else "FAIL")
    return table, ok


def throughput(opts: argparse.Namespace, out: str) -> Table:
    every = {
        s: PEAK * (0.9 if (s // APPLY_EVERY) % 2 else 1.0) for s in range(APPLY_EVERY, opts.timed_steps, APPLY_EVERY)
    }
    variants: dict[str, dict[int, float] | None] = {
        "without the callback": None,
        "callback, idle": {},
        f"callback, a change every {APPLY_EVERY} steps": every,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    hook: dict[str, list[float]] = {name: [] for name in variants}
    run(opts, out, opts.timed_steps, PEAK, None)  # warm-up: kernels, allocator, caches
    for _ in range(opts.repeats):
        for name, rates in variants.items():
            recorder, _, _ = run(opts, out, opts.timed_steps, PEAK, rates)
            times[name].append(recorder.ms_per_step(opts.timed_steps))
            steady = recorder.hook_us[TIMED_FROM:] or [0.0]
            hook[name].append(max(every_rank(sum(steady) / len(steady))))  # the slowest rank's mean
    base = min(times["without the callback"])
    table = Table(
        title=f"{opts.timed_steps} steps, steady state from step {TIMED_FROM}, best of {opts.repeats}, alternating"
    )
    table.add_column("run")
    table.add_column("ms / optimizer step", justify="right")
    table.add_column("vs without", justify="right")
    table.add_column("µs in on_step_end / step", justify="right")
    for name, values in times.items():
        inside = f"{min(hook[name]):.1f}" if variants[name] is not None else "-"
        table.add_row(name, f"{min(values):.3f}", f"{min(values) / base:.3f}x", inside)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512, help="hidden size of the Llama (default 512)")
    parser.add_argument("--layers", type=int, default=8, help="decoder layers (default 8)")
    parser.add_argument("--length", type=int, default=512, help="tokens per row (default 512)")
    parser.add_argument("--batch", type=int, default=8, help="rows per device batch (default 8)")
    parser.add_argument("--vocab", type=int, default=32_000, help="vocabulary size (default 32000)")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of the rule check (default 60)")
    parser.add_argument("--timed-steps", type=int, default=200, help="optimizer steps of each timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant (default 3)")
    parser.add_argument("--quick", action="store_true", help="a tiny model and few steps: checks the script runs")
    parser.add_argument("--ranks", type=int, default=1, help="processes, one GPU each (starts torchrun; default 1)")
    opts = parser.parse_args()
    if opts.ranks > 1 and "LOCAL_RANK" not in os.environ:  # start the ranks, each running this same command
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(opts.ranks)]
        return subprocess.call([*torchrun, __file__, *sys.argv[1:]])
    if opts.quick:
        opts.width, opts.layers, opts.length, opts.batch, opts.vocab = 64, 1, 16, 2, 256
        # Room for the change to apply: with several ranks, at an exchange after step CHANGE_AFTER.
        opts.steps, opts.timed_steps, opts.repeats = CHANGE_AFTER + 30, TIMED_FROM + 5, 1

    console = Console(quiet=int(os.environ.get("RANK", "0")) != 0)  # rank 0 prints for all
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (no CUDA)"
    device += f", {world_size()} ranks ({'NCCL' if torch.cuda.is_available() else 'gloo'})" if world_size() > 1 else ""
    console.print(
        f"{device}; torch {torch.__version__}, transformers {transformers.__version__}; "
        f"Llama {opts.width} wide x {opts.layers} layers, {opts.batch} x {opts.length} tokens, accumulation 2, "
        "cosine, bf16, adamw_torch_fused"
    )
    out = tempfile.mkdtemp(prefix="liveparams-gpu-check-")
    rule, ok = check_the_rule(opts, out)
    console.print(rule)
    console.print(throughput(opts, out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
