"""The demo's picture: learning rate and loss per step, with the moments updates were applied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Marker:
    """An applied request: after ``step``, ``label`` took effect."""

    step: int
    label: str


def plot_run(lrs: dict[int, float], losses: dict[int, float], markers: list[Marker], path: Path) -> Path:
    """Write a two-panel PNG (LR above, loss below) to ``path`` and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lr, ax_loss) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    steps = sorted(lrs)
    ax_lr.plot(steps, [lrs[s] for s in steps], color="tab:blue", lw=1.8)
    ax_lr.set_ylabel("learning rate used")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    loss_steps = sorted(losses)
    ax_loss.plot(loss_steps, [losses[s] for s in loss_steps], color="tab:orange", lw=1.2)
    ax_loss.set_ylabel("training loss")
    ax_loss.set_xlabel("optimizer step")
    for marker in markers:
        # Applied in on_step_end of `step`: the next optimizer step is the first to use it.
        x = marker.step + 0.5
        for ax in (ax_lr, ax_loss):
            ax.axvline(x, color="tab:green", ls="--", lw=1)
        ax_lr.annotate(
            marker.label,
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
            color="tab:green",
        )
    ax_lr.set_title("liveparams demo: hyperparameters changed live from Supabase")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
