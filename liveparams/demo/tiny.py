"""A tiny causal LM, tokenizer and datasets built offline, for tests and the demo.

Why: every trainer (Trainer, SFT, DPO, ORPO, KTO, GRPO, RLOO, Reward) must be
exercised on CPU in seconds with no model hub. The model is a 2-layer,
32-wide ``LlamaForCausalLM`` (~30k parameters) with a byte-level BPE
tokenizer trained on a few hundred synthetic sentences and a ChatML chat
template. It is saved to a directory because DPO/KTO/RLOO build their
reference model from a path. Built once per process and cached.
"""

from __future__ import annotations

import atexit
import functools
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "CHAT_TEMPLATE",
    "DEMO_PEAK_LR",
    "demo_sft_trainer",
    "kto_dataset",
    "length_reward",
    "preference_dataset",
    "prompt_dataset",
    "sft_dataset",
    "tiny_model_dir",
]

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_SUBJECTS = ("the cat", "a dog", "the model", "my friend", "the teacher", "a robot", "the bird", "our team")
_VERBS = ("likes", "sees", "finds", "learns", "builds", "reads", "paints", "trains")
_OBJECTS = ("a small box", "the red ball", "new words", "a long song", "the green tree", "fast code", "warm bread")


def _sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}." for _ in range(count)]


@functools.cache
def tiny_model_dir() -> str:
    """Path of a saved tiny ``LlamaForCausalLM`` plus its tokenizer (built on first call in this process)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [*_sentences(300), "user", "assistant", "system"]
    trainer = trainers.BpeTrainer(
        vocab_size=360,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,  # its bars would clutter the demo's terminal
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    root = tempfile.mkdtemp(prefix="liveparams-tiny-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    path = Path(root) / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def sft_dataset(size: int = 64, conversational: bool = False) -> Any:
    """Plain ``text`` rows, or ``messages`` rows (user/assistant) when ``conversational``."""
    from datasets import Dataset

    sentences = _sentences(size, seed=1)
    if conversational:
        rows = [
            {"messages": [{"role": "user", "content": "say something"}, {"role": "assistant", "content": s}]}
            for s in sentences
        ]
        return Dataset.from_list(rows)
    return Dataset.from_dict({"text": sentences})


def preference_dataset(size: int = 64) -> Any:
    """``prompt`` / ``chosen`` / ``rejected`` rows (DPO, ORPO, Reward)."""
    from datasets import Dataset

    prompts, chosen, rejected = _sentences(size, 2), _sentences(size, 3), _sentences(size, 4)
    return Dataset.from_dict({"prompt": prompts, "chosen": chosen, "rejected": rejected})


def kto_dataset(size: int = 64) -> Any:
    """``prompt`` / ``completion`` / ``label`` rows (KTO), half desirable."""
    from datasets import Dataset

    prompts, completions = _sentences(size, 5), _sentences(size, 6)
    labels = [i % 2 == 0 for i in range(size)]
    return Dataset.from_dict({"prompt": prompts, "completion": completions, "label": labels})


def prompt_dataset(size: int = 64) -> Any:
    """``prompt`` rows (GRPO, RLOO)."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": _sentences(size, 7)})


def length_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """A reward function for GRPO/RLOO: shorter completions score higher."""
    return [-float(len(str(c))) for c in completions]


DEMO_PEAK_LR = 1e-3


def demo_sft_trainer(
    output_dir: str, max_steps: int, callbacks: list[Any], logging_steps: int = 1, **overrides: Any
) -> Any:
    """The demo's run: SFT of the tiny model, linear schedule with warmup to ``DEMO_PEAK_LR``, no saving.

    Shared by the demo and the benchmarks so that their figures describe the same
    training. Trainer's console printer is removed: callers show progress themselves.
    ``overrides`` replace ``SFTConfig`` arguments (a benchmark that saves checkpoints).
    """
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    settings: dict[str, Any] = dict(
        output_dir=output_dir,
        max_steps=max_steps,
        per_device_train_batch_size=8,
        learning_rate=DEMO_PEAK_LR,
        lr_scheduler_type="linear",
        warmup_steps=max(1, max_steps // 15),
        weight_decay=0.0,
        logging_steps=logging_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        max_length=32,
        seed=0,
    )
    args = SFTConfig(**{**settings, **overrides})
    trainer = SFTTrainer(model=tiny_model_dir(), args=args, train_dataset=sft_dataset(256), callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)
    return trainer
