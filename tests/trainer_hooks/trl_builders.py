"""One builder per TRL trainer: the tiny model, a matching dataset and a small config (CPU, ~10 steps).

Some take config overrides as keywords (a loss type, a number of steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hooks_helpers import BASE_ARGS

from liveparams.demo import tiny

COMMON: dict[str, Any] = {**BASE_ARGS, "max_steps": 10, "warmup_steps": 3}
GENERATION: dict[str, Any] = {"num_generations": 2, "max_completion_length": 8, "beta": 0.1}  # GRPO's and RLOO's


def _tokenizer(model_dir: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def sft(model_dir: str, out: str, callbacks: list[Any]) -> Any:
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=out, max_length=32, **COMMON)
    data = tiny.sft_dataset(conversational=True)
    return SFTTrainer(
        model=model_dir, args=args, train_dataset=data, processing_class=_tokenizer(model_dir), callbacks=callbacks
    )


def dpo(model_dir: str, out: str, callbacks: list[Any], **config: Any) -> Any:
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(output_dir=out, max_length=32, beta=0.1, **{**COMMON, **config})
    data = tiny.preference_dataset()
    return DPOTrainer(
        model=model_dir, args=args, train_dataset=data, processing_class=_tokenizer(model_dir), callbacks=callbacks
    )


def orpo(model_dir: str, out: str, callbacks: list[Any]) -> Any:
    from transformers import AutoModelForCausalLM
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    args = ORPOConfig(output_dir=out, max_length=32, beta=0.1, **COMMON)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    data = tiny.preference_dataset()
    return ORPOTrainer(
        model=model, args=args, train_dataset=data, processing_class=_tokenizer(model_dir), callbacks=callbacks
    )


def kto(model_dir: str, out: str, callbacks: list[Any]) -> Any:
    from trl import KTOConfig, KTOTrainer

    args = KTOConfig(output_dir=out, max_length=32, beta=0.1, **COMMON)
    data = tiny.kto_dataset()
    return KTOTrainer(
        model=model_dir, args=args, train_dataset=data, processing_class=_tokenizer(model_dir), callbacks=callbacks
    )


def grpo(model_dir: str, out: str, callbacks: list[Any], **config: Any) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=out, **{**GENERATION, **COMMON, **config})
    return GRPOTrainer(
        model=model_dir,
        reward_funcs=tiny.length_reward,
        args=args,
        train_dataset=tiny.prompt_dataset(),
        processing_class=_tokenizer(model_dir),
        callbacks=callbacks,
    )


def rloo(model_dir: str, out: str, callbacks: list[Any], **config: Any) -> Any:
    from trl import RLOOConfig, RLOOTrainer

    args = RLOOConfig(output_dir=out, **{**GENERATION, **COMMON, **config})
    return RLOOTrainer(
        model=model_dir,
        reward_funcs=tiny.length_reward,
        args=args,
        train_dataset=tiny.prompt_dataset(),
        processing_class=_tokenizer(model_dir),
        callbacks=callbacks,
    )


def reward(model_dir: str, out: str, callbacks: list[Any]) -> Any:
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    tokenizer = _tokenizer(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(output_dir=out, max_length=32, **COMMON)
    data = tiny.preference_dataset()
    return RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=callbacks)


BUILDERS: dict[str, Callable[[str, str, list[Any]], Any]] = {
    "SFTTrainer": sft,
    "DPOTrainer": dpo,
    "ORPOTrainer": orpo,
    "KTOTrainer": kto,
    "GRPOTrainer": grpo,
    "RLOOTrainer": rloo,
    "RewardTrainer": reward,
}
WITH_BETA = ("DPOTrainer", "ORPOTrainer", "KTOTrainer", "GRPOTrainer", "RLOOTrainer")
