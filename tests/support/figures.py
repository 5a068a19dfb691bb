"""The figure seam of the fast suite: drawing a run's pictures (the augmented-samples grid, the best epoch's
confusion matrices and mistakes, report.png) costs more than half of a tiny training run, so tests that are not
about pictures get cheap stand-ins. Everything around the drawing still runs: the report's inputs are read and
checked (`collect`) and a PNG is written atomically where report.png belongs. Tests about pictures carry the
`figures` marker and draw for real; subprocess runs (the slow end-to-end tests) always do."""
from __future__ import annotations

from typing import Any


def tiny_figure(data: Any) -> Any:
    """A 1 x 1 inch blank figure in place of `utils.run_report.draw` (its input is still collected)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1), dpi=10)
    fig.text(0.5, 0.5, type(data).__name__)
    return fig


def use_cheap_figures(monkeypatch: Any) -> None:
    """Replace the three drawing entry points of a training run by stand-ins."""
    import trainer.lifecycle
    import trainer.visual_log
    import utils.run_report

    monkeypatch.setattr(trainer.lifecycle, "log_augmented_samples", lambda *args, **kwargs: None)
    monkeypatch.setattr(trainer.visual_log, "log_best_epoch", lambda *args, **kwargs: None)
    monkeypatch.setattr(utils.run_report, "draw", tiny_figure)
