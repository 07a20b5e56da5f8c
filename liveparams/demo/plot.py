"""The demo's picture: learning rate and loss per step, with every request's outcome marked where it happened.

Three panels share the step axis: a strip of events on top (one marker and one label per
request, stacked so that labels never overlap each other or a curve), the learning rate
used, and the training loss. The PNG carries what it shows as metadata (``liveparams``
key: legend entries and markers), so a test can check the picture a person sees.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

MarkerKind = Literal["applied", "rejected", "refused"]

# kind → (legend text, colour, marker symbol, line style on the curves)
_STYLE: dict[str, tuple[str, str, str, str]] = {
    "applied": ("applied at a step boundary", "tab:green", "v", "--"),
    "rejected": ("rejected by the trainer (reason on the row)", "tab:red", "X", ":"),
    "refused": ("refused by the server (RPC error)", "tab:gray", "s", ""),
}
METADATA_KEY = "liveparams"
# A new learning_rate is a new peak (docs/parameters.md, "What `learning_rate` means"): the curve is below it.
PEAK_LABEL = "peak (learning_rate); the rate used is peak × the schedule (warmup, then decay)"


@dataclass(frozen=True)
class Marker:
    """One request's outcome: after ``step``, ``label`` was applied, rejected or refused (``kind``)."""

    step: int
    label: str
    kind: MarkerKind = "applied"


def _levels(extents: list[tuple[float, float]], pad: float) -> list[int]:
    """A line of the event strip for each label's x extent (in step units), first fit, ``pad`` apart."""
    ends: list[float] = []  # per line: where its last label ends
    levels = []
    for start, end in extents:
        level = next((i for i, last in enumerate(ends) if start >= last + pad), len(ends))
        if level == len(ends):
            ends.append(end)
        else:
            ends[level] = end
        levels.append(level)
    return levels


def build_figure(
    lrs: dict[int, float], losses: dict[int, float], markers: list[Marker], peaks: dict[int, float] | None = None
) -> Any:
    """The matplotlib figure :func:`plot_run` saves (separate so that tests can inspect its artists).

    ``peaks``: the peak learning rate from each step on (the configured one, then each applied
    request's). Why: a request for 3e-4 in the middle of a decay shows as about 2.6e-4 on the
    curve, and a person who set 3e-4 must see where the difference comes from.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    markers = sorted(markers, key=lambda m: m.step)
    steps = sorted(lrs)
    first, last = (steps[0], steps[-1]) if steps else (0, 1)
    span = max(1, last - first)
    fig, (ax_events, ax_lr, ax_loss) = plt.subplots(3, 1, figsize=(11, 7), sharex=True)
    ax_lr.plot(steps, [lrs[s] for s in steps], color="tab:blue", lw=1.8, label="learning rate used")
    ax_lr.set_ylabel("learning rate used")
    _draw_peaks(ax_lr, lrs, peaks or {}, last)
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    loss_steps = sorted(losses)
    ax_loss.plot(loss_steps, [losses[s] for s in loss_steps], color="tab:orange", lw=1.2, label="training loss")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_xlabel("optimizer step")
    ax_lr.set_xlim(first - 0.02 * span, last + 0.02 * span)
    ax_events.set_yticks([])
    ax_events.set_title("liveparams demo: hyperparameters changed live from Supabase")
    for spine in ("left", "right", "top"):
        ax_events.spines[spine].set_visible(False)

    points, labels = [], []
    for marker in markers:
        _, color, symbol, linestyle = _STYLE[marker.kind]
        # Applied in on_step_end of `step`: the next optimizer step is the first to use it.
        x = marker.step + 0.5
        (point,) = ax_events.plot([x], [0], marker=symbol, color=color, ls="", ms=7)
        right_half = x > first + span * 0.6
        label = ax_events.annotate(
            marker.label,
            (x, 0),
            xytext=(-6 if right_half else 6, 0),
            textcoords="offset points",
            ha="right" if right_half else "left",
            va="center",
            fontsize=8,
            color=color,
        )
        points.append(point)
        labels.append(label)
        if linestyle:
            for ax in (ax_lr, ax_loss):
                ax.axvline(x, color=color, ls=linestyle, lw=1)

    # Stack the labels: measure each one's extent in step units, then give each the first free line.
    fig.canvas.draw()
    to_steps = ax_events.transData.inverted()
    extents = []
    for point, label in zip(points, labels, strict=True):
        box = label.get_window_extent()  # measured with the renderer of the draw above
        (x0, _), (x1, _) = to_steps.transform([(box.x0, 0), (box.x1, 0)])
        x = point.get_xdata()[0]
        extents.append((min(x0, x) - 0.005 * span, max(x1, x) + 0.005 * span))
    levels = _levels(extents, pad=0.01 * span)
    for point, label, level in zip(points, labels, levels, strict=True):
        point.set_ydata([level])
        label.xy = (label.xy[0], level)
    lines = max(levels, default=0) + 1
    ax_events.set_ylim(lines - 0.4, -0.6)
    ax_events.get_gridspec().set_height_ratios([0.4 + 0.3 * lines, 3, 2])
    fig.set_size_inches(11, 6.5 + 0.22 * lines)

    kinds = [kind for kind in _STYLE if any(m.kind == kind for m in markers)]
    handles = [Line2D([], [], color="tab:blue", lw=1.8, label="learning rate used")]
    if peaks:
        handles.append(Line2D([], [], color="tab:blue", lw=1.2, ls=":", label=PEAK_LABEL))
    handles += [
        Line2D([], [], color=_STYLE[k][1], marker=_STYLE[k][2], ls=_STYLE[k][3] or "", label=_STYLE[k][0])
        for k in kinds
    ]
    ax_lr.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    ax_loss.legend(loc="upper right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


def _draw_peaks(ax: Any, lrs: dict[int, float], peaks: dict[int, float], last: int) -> None:
    """The peak as a dotted step line, and at each new peak's first step how the rate used follows from it."""
    starts = sorted(peaks)
    if not starts:
        return
    for start, end in zip(starts, [*starts[1:], last + 1], strict=True):
        ax.plot([start - 0.5, end - 0.5], [peaks[start]] * 2, color="tab:blue", ls=":", lw=1.2)
    for step in starts[1:]:
        if step in lrs:
            used, peak = lrs[step], peaks[step]
            ax.annotate(
                f"step {step} uses {used:.2e} = peak {peak:.2e} × {used / peak:.0%} (schedule)",
                (step, used),
                xytext=(8, -16),
                textcoords="offset points",
                fontsize=8,
                color="tab:blue",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
            )


def notes(fig: Any) -> list[str]:
    """The explanations written on the learning-rate panel."""
    return [text.get_text() for text in fig.axes[1].texts]


def legend_texts(fig: Any) -> list[str]:
    """Every legend entry of ``fig``, top panel first."""
    return [text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts()]


def plot_run(
    lrs: dict[int, float],
    losses: dict[int, float],
    markers: list[Marker],
    path: Path,
    peaks: dict[int, float] | None = None,
) -> Path:
    """Write the PNG (events, LR, loss) to ``path`` and return it."""
    import matplotlib.pyplot as plt

    fig = build_figure(lrs, losses, markers, peaks)
    shown = {"legend": legend_texts(fig), "markers": [asdict(m) for m in markers], "notes": notes(fig)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={METADATA_KEY: json.dumps(shown)})
    plt.close(fig)
    return path
