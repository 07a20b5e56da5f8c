"""The demo's picture shows what a person needs: a legend, every outcome, and labels that are readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from liveparams.demo.plot import METADATA_KEY, PEAK_LABEL, Marker, build_figure, legend_texts, notes, plot_run

STEPS = 100
LRS = {s: 1e-3 * (1 - s / (STEPS + 1)) for s in range(1, STEPS + 1)}
LOSSES = {s: 6.0 - s / 50 for s in range(1, STEPS + 1)}
MARKERS = [
    Marker(20, "learning_rate=0.0003"),
    Marker(35, "weight_decay=0.1"),
    Marker(50, "command=save_checkpoint"),
    Marker(60, "learning_rate=-1", "refused"),
    Marker(62, "beta=0.5", "rejected"),
    Marker(STEPS - 1, "command=stop"),
]


def _boxes(fig):  # type: ignore[no-untyped-def]
    renderer = fig.canvas.get_renderer()
    events, lr_axis, loss_axis = fig.axes
    labels = [t for t in events.texts if t.get_text()]
    return renderer, events, lr_axis, loss_axis, labels


def test_the_legend_names_the_curve_and_every_kind_of_outcome() -> None:
    fig = build_figure(LRS, LOSSES, MARKERS)
    legend = [text.get_text() for ax in fig.axes if ax.get_legend() for text in ax.get_legend().get_texts()]
    assert legend == [
        "learning rate used",
        "applied at a step boundary",
        "rejected by the trainer (reason on the row)",
        "refused by the server (RPC error)",
        "training loss",
    ]


def test_every_request_has_a_marker_and_a_label() -> None:
    fig = build_figure(LRS, LOSSES, MARKERS)
    _, events, _, _, labels = _boxes(fig)
    assert sorted(t.get_text() for t in labels) == sorted(m.label for m in MARKERS)
    drawn = [line for line in events.get_lines() if line.get_marker() not in (None, "None", "")]
    assert len(drawn) == len(MARKERS)


def test_labels_stay_inside_the_picture_and_off_the_curves_and_each_other() -> None:
    fig = build_figure(LRS, LOSSES, MARKERS)
    fig.canvas.draw()
    renderer, _, lr_axis, loss_axis, labels = _boxes(fig)
    figure_box = fig.bbox
    boxes = [label.get_window_extent(renderer) for label in labels]
    for label, box in zip(labels, boxes, strict=True):
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1, f"{label.get_text()} is cut off"
        for axis in (lr_axis, loss_axis):
            assert not box.overlaps(axis.get_window_extent(renderer)), f"{label.get_text()} covers a curve"
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            assert not first.overlaps(second)


def test_the_png_records_what_it_shows(tmp_path: Path) -> None:
    png = plot_run(LRS, LOSSES, MARKERS, tmp_path / "demo.png")
    shown = json.loads(Image.open(png).text[METADATA_KEY])
    assert "refused by the server (RPC error)" in shown["legend"]
    assert {(m["step"], m["kind"]) for m in shown["markers"]} == {(m.step, m.kind) for m in MARKERS}


@pytest.mark.parametrize("steps", [10, 300])
def test_crowded_and_sparse_runs_keep_labels_apart(steps: int) -> None:
    lrs = {s: 1e-3 for s in range(1, steps + 1)}
    markers = [Marker(max(1, steps * k // 12), f"learning_rate={k}e-4") for k in range(1, 12)]
    fig = build_figure(lrs, {}, markers)
    fig.canvas.draw()
    renderer, *_, labels = _boxes(fig)
    boxes = [label.get_window_extent(renderer) for label in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_new_peak_is_drawn_and_the_rate_used_after_it_is_explained() -> None:
    """Set 3e-4 in the middle of a decay and the curve shows less: the plot says why, at the step that uses it."""
    lrs = {s: (1e-3 if s <= 20 else 3e-4) * (1 - s / (STEPS + 1)) for s in range(1, STEPS + 1)}
    fig = build_figure(lrs, LOSSES, MARKERS, peaks={1: 1e-3, 21: 3e-4})
    assert PEAK_LABEL in legend_texts(fig)
    assert notes(fig) == [f"step 21 uses {lrs[21]:.2e} = peak 3.00e-04 × {lrs[21] / 3e-4:.0%} (schedule)"]
    dotted = [
        line for line in fig.axes[1].get_lines() if line.get_linestyle() == ":" and line.get_color() == "tab:blue"
    ]
    assert sorted(float(line.get_ydata()[0]) for line in dotted) == [3e-4, 1e-3]
