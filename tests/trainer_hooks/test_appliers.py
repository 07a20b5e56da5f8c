"""Each applier's meaning, checked on real optimizers and the schedulers transformers builds (no Trainer loop)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hooks_helpers import schedule_factors
from transformers import TrainerControl, TrainerState, TrainingArguments, get_scheduler

from liveparams.trainer_hooks import ApplyContext, _schedule, _snapshot, get_applier

TOTAL, WARMUP = 12, 3


def make_ctx(
    tmp_path: Any,
    name: str = "linear",
    lrs: tuple[float, ...] = (1e-3,),
    decays: tuple[float, ...] | None = None,
    step: int = 5,
    trainer: Any = None,
    **args: Any,
) -> ApplyContext:
    """An optimizer with one group per rate and transformers' scheduler ``name``, advanced ``step`` steps."""
    decays = decays or tuple(0.01 for _ in lrs)
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr, "weight_decay": wd}
        for lr, wd in zip(lrs, decays, strict=True)
    ]
    optimizer = torch.optim.AdamW(groups)
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=WARMUP, num_training_steps=TOTAL)
    for _ in range(step):
        optimizer.step()
        if name not in ("reduce_lr_on_plateau", "greedy"):
            scheduler.step()
    return ApplyContext(
        args=TrainingArguments(output_dir=str(tmp_path), report_to=[], **args),
        state=TrainerState(global_step=step, max_steps=TOTAL),
        control=TrainerControl(),
        optimizer=optimizer,
        lr_scheduler=scheduler,
        trainer=trainer,
    )


def set_value(ctx: ApplyContext, name: str, value: Any) -> None:
    applier = get_applier(name)
    assert applier.check(value, ctx) is None
    applier.apply(value, ctx)


def run_rest(ctx: ApplyContext) -> list[list[float]]:
    """Rates used at each remaining step (group-wise), checking that the logged rate equals the used one."""
    used = []
    while ctx.lr_scheduler.last_epoch < TOTAL:
        lrs = [g["lr"] for g in ctx.optimizer.param_groups]
        assert ctx.lr_scheduler.get_last_lr() == pytest.approx(lrs)  # what Trainer logs
        used.append(lrs)
        ctx.optimizer.step()
        ctx.lr_scheduler.step()
    return used


@pytest.mark.parametrize(
    "name", ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant_with_warmup", "inverse_sqrt"]
)
def test_learning_rate_is_a_new_peak_and_the_schedule_keeps_its_shape(tmp_path: Any, name: str) -> None:
    ctx = make_ctx(tmp_path, name)
    set_value(ctx, "learning_rate", 4e-3)
    expected = schedule_factors(name, WARMUP, TOTAL, peak=4e-3)[5:TOTAL]
    assert [lrs[0] for lrs in run_rest(ctx)] == pytest.approx(expected)


def test_learning_rate_keeps_the_ratio_between_param_groups(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, lrs=(1e-3, 1.6e-2))  # LoRA+-style: B matrices 16x faster
    set_value(ctx, "learning_rate", 5e-4)
    factors = schedule_factors("linear", WARMUP, TOTAL)
    assert run_rest(ctx) == [pytest.approx([5e-4 * f, 8e-3 * f]) for f in factors[5:TOTAL]]


def test_learning_rate_is_idempotent_so_it_can_be_reapplied_on_resume(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, lrs=(1e-3, 2e-3))
    set_value(ctx, "learning_rate", 5e-4)
    once = [g["lr"] for g in ctx.optimizer.param_groups]
    set_value(ctx, "learning_rate", 5e-4)
    assert [g["lr"] for g in ctx.optimizer.param_groups] == once
    assert get_applier("learning_rate").read(ctx) == 5e-4


def test_constant_mode_freezes_the_rate_and_learning_rate_then_sets_it(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path)
    current = ctx.optimizer.param_groups[0]["lr"]
    set_value(ctx, "learning_rate_mode", "constant")
    assert get_applier("learning_rate_mode").read(ctx) == "constant"
    assert ctx.optimizer.param_groups[0]["lr"] == pytest.approx(current)
    set_value(ctx, "learning_rate", 3e-4)
    assert [lrs[0] for lrs in run_rest(ctx)] == pytest.approx([3e-4] * (TOTAL - 5))


def test_rescale_mode_resumes_the_schedule_from_the_current_rate(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, step=6)
    set_value(ctx, "learning_rate_mode", "constant")
    set_value(ctx, "learning_rate", 3e-4)
    set_value(ctx, "learning_rate_mode", "rescale")
    factors = schedule_factors("linear", WARMUP, TOTAL)
    peak = 3e-4 / factors[6]
    assert [lrs[0] for lrs in run_rest(ctx)] == pytest.approx([peak * f for f in factors[6:TOTAL]])


def test_warmup_steps_moves_the_warmup_and_recomputes_the_current_rate(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, step=2)
    set_value(ctx, "warmup_steps", 8)
    assert get_applier("warmup_steps").read(ctx) == 8
    factors = schedule_factors("linear", 8, TOTAL)
    assert [lrs[0] for lrs in run_rest(ctx)] == pytest.approx([1e-3 * f for f in factors[2:TOTAL]])


def test_warmup_steps_is_refused_by_a_schedule_without_warmup(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, "constant")
    assert "has no num_warmup_steps" in get_applier("warmup_steps").check(4, ctx)


def test_max_steps_shortens_the_run_and_the_schedule_horizon(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path)
    set_value(ctx, "max_steps", 8)
    assert ctx.state.max_steps == 8
    rates = []
    for _ in range(3):
        ctx.optimizer.step()
        ctx.lr_scheduler.step()
        rates.append(ctx.optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-3 * f for f in schedule_factors("linear", WARMUP, 8)[6:9]])
    assert rates[-1] == 0.0


def test_max_steps_refuses_the_past_and_extensions_beyond_the_planned_epochs(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path)
    ctx.state.num_train_epochs = 2
    ctx.train_dataloader = list(range(7))  # 7 batches per epoch, no accumulation: 14 steps planned
    applier = get_applier("max_steps")
    assert "not after the current step 5" in applier.check(5, ctx)
    assert "beyond the 14 steps" in applier.check(15, ctx)
    assert applier.check(14, ctx) is None


def test_lr_on_plateau_scheduler_state_is_the_group_rate(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, "reduce_lr_on_plateau", lrs=(1e-3, 2e-3))
    set_value(ctx, "learning_rate", 4e-3)
    assert [g["lr"] for g in ctx.optimizer.param_groups] == pytest.approx([4e-3, 8e-3])
    for _ in range(20):  # a flat metric: the scheduler reduces from the new rate
        ctx.lr_scheduler.step(1.0)
    assert ctx.optimizer.param_groups[0]["lr"] == pytest.approx(4e-4)
    assert "constant" in get_applier("learning_rate_mode").check("constant", ctx)


def test_greedy_scheduler_moves_its_reset_anchor_too(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, "greedy", lrs=(1e-3, 3e-3))
    set_value(ctx, "learning_rate", 2e-3)
    assert [g["lr"] for g in ctx.optimizer.param_groups] == pytest.approx([2e-3, 6e-3])
    assert ctx.lr_scheduler._init_lrs == pytest.approx([2e-3, 6e-3])
    assert ctx.lr_scheduler.get_last_lr() == pytest.approx([2e-3, 6e-3])


def test_learning_rate_is_refused_under_an_unknown_scheduler(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path)
    ctx.lr_scheduler = torch.optim.lr_scheduler.StepLR(ctx.optimizer, step_size=2)
    assert "StepLR" in get_applier("learning_rate").check(1e-4, ctx)


def test_weight_decay_changes_the_decayed_group_only(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, lrs=(1e-3, 1e-3), decays=(0.01, 0.0))
    set_value(ctx, "weight_decay", 0.1)
    assert [g["weight_decay"] for g in ctx.optimizer.param_groups] == [0.1, 0.0]
    assert get_applier("weight_decay").read(ctx) == 0.1


def test_weight_decay_without_a_decayed_group_needs_the_trainer(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, lrs=(1e-3, 1e-3), decays=(0.0, 0.0))
    assert "no parameter group is decayed" in get_applier("weight_decay").check(0.1, ctx)


def test_max_grad_norm_is_set_on_args_and_refused_under_deepspeed(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path)
    set_value(ctx, "max_grad_norm", 0.5)
    assert ctx.args.max_grad_norm == 0.5
    ctx.args = SimpleNamespace(deepspeed="ds_config.json", max_grad_norm=1.0)
    assert "DeepSpeed" in get_applier("max_grad_norm").check(0.5, ctx)


def test_intervals_go_through_state_and_need_a_steps_strategy(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, logging_strategy="steps", save_strategy="epoch")
    set_value(ctx, "logging_steps", 7)
    assert ctx.state.logging_steps == 7
    assert "save_strategy is 'epoch'" in get_applier("save_steps").check(5, ctx)
    assert "eval_strategy='no'" in get_applier("eval_steps").check(5, ctx)


class FakeDPOTrainer:
    """Only what ``beta`` touches: TRL keeps the value on the trainer object."""

    def __init__(self, beta: float, ref_model: Any = "ref") -> None:
        self.beta = beta
        self.ref_model = ref_model


def test_beta_is_set_on_the_trainer_object(tmp_path: Any) -> None:
    trainer = FakeDPOTrainer(beta=0.1)
    ctx = make_ctx(tmp_path, trainer=trainer)
    set_value(ctx, "beta", 0.3)
    assert trainer.beta == 0.3


def test_beta_is_refused_without_a_trainer_or_on_a_trainer_without_beta(tmp_path: Any) -> None:
    applier = get_applier("beta")
    assert "from_env(trainer)" in applier.check(0.3, make_ctx(tmp_path))
    assert "SimpleNamespace has no beta" in applier.check(0.3, make_ctx(tmp_path, trainer=SimpleNamespace()))
    no_reference = make_ctx(tmp_path, trainer=FakeDPOTrainer(beta=0.0, ref_model=None))
    assert "built no reference model" in applier.check(0.3, no_reference)


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("save_checkpoint", {"should_save"}),
        ("stop", {"should_save", "should_training_stop"}),
    ],
)
def test_commands_raise_control_flags(tmp_path: Any, command: str, flags: set[str]) -> None:
    ctx = make_ctx(tmp_path)
    set_value(ctx, "command", command)
    raised = {k for k, v in vars(ctx.control).items() if v is True}
    assert raised == flags


def test_evaluate_is_refused_when_there_is_nothing_to_evaluate(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, trainer=SimpleNamespace(eval_dataset=None))
    assert "has no eval_dataset" in get_applier("command").check("evaluate", ctx)


def test_a_snapshot_undoes_every_change_a_request_can_make(tmp_path: Any) -> None:
    trainer = FakeDPOTrainer(beta=0.1)
    ctx = make_ctx(tmp_path, lrs=(1e-3, 2e-3), trainer=trainer)
    before = ([dict(g, params=None) for g in ctx.optimizer.param_groups], list(ctx.lr_scheduler.base_lrs))
    keywords = dict(ctx.lr_scheduler.lr_lambdas[0].keywords)
    restore = _snapshot.capture(ctx)
    for name, value in [
        ("learning_rate_mode", "constant"),
        ("warmup_steps", 1),
        ("max_steps", 9),
        ("learning_rate", 7e-3),
        ("weight_decay", 0.5),
        ("adam_beta1", 0.5),
        ("adam_beta2", 0.95),
        ("adam_epsilon", 1e-6),
        ("max_grad_norm", 0.1),
        ("beta", 0.9),
        ("command", "stop"),
    ]:
        set_value(ctx, name, value)
    restore()
    after = ([dict(g, params=None) for g in ctx.optimizer.param_groups], list(ctx.lr_scheduler.base_lrs))
    assert after == before
    assert not _schedule.is_constant(ctx.lr_scheduler)
    assert ctx.lr_scheduler.lr_lambdas[0].keywords == keywords
    assert (ctx.state.max_steps, ctx.args.max_grad_norm, trainer.beta) == (TOTAL, 1.0, 0.1)
    assert not ctx.control.should_training_stop


def test_weight_decay_set_to_zero_can_be_set_again_without_a_trainer(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, lrs=(1e-3, 1e-3), decays=(0.01, 0.0))  # no trainer reference
    set_value(ctx, "weight_decay", 0.0)
    set_value(ctx, "weight_decay", 0.1)
    assert [g["weight_decay"] for g in ctx.optimizer.param_groups] == [0.1, 0.0]


def test_adam_hyperparameters_are_set_on_every_param_group(tmp_path: Any) -> None:
    ctx = make_ctx(tmp_path, lrs=(1e-3, 2e-3))
    set_value(ctx, "adam_beta1", 0.8)
    set_value(ctx, "adam_beta2", 0.95)
    set_value(ctx, "adam_epsilon", 1e-6)
    assert [(g["betas"], g["eps"]) for g in ctx.optimizer.param_groups] == [((0.8, 0.95), 1e-6)] * 2
    assert [get_applier(n).read(ctx) for n in ("adam_beta1", "adam_beta2", "adam_epsilon")] == [0.8, 0.95, 1e-6]
    ctx.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    assert get_applier("adam_beta1").check(0.9, ctx) == "the optimizer (SGD) has no 'betas' in its param groups"


def tensor_lr_ctx(tmp_path: Any) -> ApplyContext:
    """A user optimizer holding its rate as a tensor (torch.compile and capturable recipes do)."""
    ctx = make_ctx(tmp_path)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=torch.tensor(1e-3))
    ctx.optimizer, ctx.lr_scheduler = optimizer, get_scheduler("linear", optimizer, WARMUP, TOTAL)
    return ctx


def test_a_tensor_learning_rate_is_changed_and_rolled_back_in_place(tmp_path: Any) -> None:
    ctx = tensor_lr_ctx(tmp_path)
    rate = ctx.optimizer.param_groups[0]["lr"]
    restore = _snapshot.capture(ctx)
    set_value(ctx, "learning_rate", 4e-3)
    assert ctx.optimizer.param_groups[0]["lr"] is rate
    restore()
    assert ctx.optimizer.param_groups[0]["lr"] is rate  # a captured graph still sees the rate in use
    assert float(rate) == 0.0  # step 0 of the warmup, as before


def deepspeed_ctx(tmp_path: Any, scheduler_of: Any) -> ApplyContext:
    """What the callback sees under DeepSpeed: accelerate's DeepSpeedSchedulerWrapper around the scheduler."""
    from accelerate.utils.deepspeed import DeepSpeedSchedulerWrapper

    from liveparams.trainer_hooks import RuntimeParameterCallback

    ctx = make_ctx(tmp_path)
    wrapped = DeepSpeedSchedulerWrapper(scheduler_of(ctx.optimizer), [ctx.optimizer])
    kwargs = {"optimizer": ctx.optimizer, "lr_scheduler": wrapped}
    return RuntimeParameterCallback()._context(ctx.args, ctx.state, ctx.control, kwargs)


def test_a_schedule_wrapped_for_deepspeed_is_changed_like_any_other(tmp_path: Any) -> None:
    ctx = deepspeed_ctx(
        tmp_path, lambda opt: get_scheduler("linear", opt, num_warmup_steps=WARMUP, num_training_steps=TOTAL)
    )
    assert isinstance(ctx.lr_scheduler, torch.optim.lr_scheduler.LambdaLR)
    for name, value in [("learning_rate", 4e-3), ("warmup_steps", 2), ("max_steps", 10)]:
        set_value(ctx, name, value)
    assert ctx.lr_scheduler.base_lrs == [4e-3]
    assert ctx.lr_scheduler.lr_lambdas[0].keywords == {"num_warmup_steps": 2, "num_training_steps": 10}


def test_deepspeeds_own_scheduler_refuses_what_it_cannot_take_with_the_reason(tmp_path: Any) -> None:
    class WarmupLR(torch.optim.lr_scheduler.LRScheduler):
        """Stands in for DeepSpeed's own scheduler (rates in its own fields, not a LambdaLR)."""

        def get_lr(self) -> list[float]:
            return list(self.base_lrs)

    ctx = deepspeed_ctx(tmp_path, WarmupLR)
    assert "this run uses WarmupLR" in get_applier("learning_rate").check(4e-3, ctx)
    assert "WarmupLR scheduler has no num_warmup_steps" in get_applier("warmup_steps").check(2, ctx)
    assert "WarmupLR scheduler's horizon cannot be moved" in get_applier("max_steps").check(10, ctx)
