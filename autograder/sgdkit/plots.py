"""The report's plots, drawn with matplotlib and inlined as PNGs: the spread of totals, each question's pass rate."""
import base64
import io
import statistics
from collections import Counter
from types import ModuleType
from typing import TYPE_CHECKING

from .results import Graded, csv_float, outcome

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLORS = {"full": "#2e7d32", "partial": "#f9a825", "zero": "#c62828", "bar": "#3f6fb5"}


def question_outcomes(graded: Graded) -> dict[str, Counter[str]]:
    """{question: Counter(full=, partial=, zero=)} over every submission."""
    outcomes: dict[str, Counter[str]] = {}
    for question in graded.questions:
        worth = graded.possible(question)
        counts = Counter(full=0, partial=0, zero=0)
        for row in graded.rows:
            counts[outcome(csv_float(row[question]) or 0.0, worth)] += 1
        outcomes[question] = counts
    return outcomes


def _data_uri(fig: "Figure") -> str:
    """The figure as an inline PNG; no Software tag, so the bytes stay the same run to run."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot() -> ModuleType:
    """pyplot on the Agg backend: the report is drawn with no screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_totals(graded: Graded) -> str:
    """Histogram of total points, one bar per point when the stage is small."""
    plt = _pyplot()
    totals = [csv_float(row["total"]) or 0.0 for row in graded.rows]
    top = graded.total_possible() or max(totals + [1.0])
    width = max(1.0, top / 20)
    edges = [i * width - width / 2 for i in range(int(top / width) + 2)]
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    ax.hist(totals, bins=edges, color=COLORS["bar"], edgecolor="white")
    if totals:
        mean = statistics.fmean(totals)
        ax.axvline(mean, color="#333333", linestyle="--", linewidth=1)
        ax.annotate(f"mean {mean:.1f}", (mean, 1), xycoords=("data", "axes fraction"),
                    xytext=(4, -12), textcoords="offset points", fontsize=8)
    ax.set_xlabel(f"total points (out of {top:g})")
    ax.set_ylabel("submissions")
    ax.set_title(f"{graded.stage}: distribution of totals", fontsize=10)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    return _data_uri(fig)


def plot_pass_rates(graded: Graded) -> str:
    """Horizontal stacked bars: share of submissions with full, partial and zero points per question."""
    plt = _pyplot()
    outcomes = question_outcomes(graded)
    questions = list(reversed(graded.questions))  # first question on top
    n = max(len(graded.rows), 1)
    fig, ax = plt.subplots(figsize=(5.6, 0.5 * len(questions) + 1.2))
    left = [0.0] * len(questions)
    for kind in ("full", "partial", "zero"):
        share = [100 * outcomes[q][kind] / n for q in questions]
        ax.barh(questions, share, left=left, color=COLORS[kind], label=kind, height=0.6)
        for y, (x0, w) in enumerate(zip(left, share)):
            if w >= 8:
                ax.text(x0 + w / 2, y, f"{w:.0f}%", ha="center", va="center", color="white", fontsize=8)
        left = [a + b for a, b in zip(left, share)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of submissions")
    ax.set_title(f"{graded.stage}: pass rate per question", fontsize=10, pad=22)
    ax.legend(ncol=3, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _data_uri(fig)
