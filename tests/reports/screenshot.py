"""Render the HTML reports (model card, data validation report, drift report) in headless
Chromium at a KFP UI pane's width (700 px) and a laptop's (1280 px): PNG screenshots to
look at, and measurements a test can assert.

    .venv/bin/python tests/reports/screenshot.py [OUT_DIR]   # default: reports-screenshots

Needs ``chromium-headless-shell`` or ``chromium`` on PATH (Debian/Ubuntu:
``apt-get install chromium-headless-shell``). The reports are made from bundled data sets
and the loan generator, the way the pipelines make them; nothing is downloaded.

The measurement opens a copy of each page with a small script appended (the reports
themselves hold none) that reports, after layout: how much wider than the window the page
is (horizontal overflow), the smallest on-screen size of any chart text (font size times
the SVG's scale), and how many chart labels end in an ellipsis.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTHS = (700, 1280)
_CHROMIUM = ("chromium-headless-shell", "chromium", "chromium-browser")

_PROBE = """<script>
const svgText = [...document.querySelectorAll('svg text')];
const sizes = svgText.map(t => {
  const m = t.getScreenCTM();
  return parseFloat(t.getAttribute('font-size')) * Math.hypot(m.a, m.b);
});
const cut = svgText.filter(t => [...t.childNodes].some(
  n => n.nodeType === 3 && n.textContent.includes('\\u2026')));
const root = document.documentElement;
// Tables, charts and code blocks wider than the box they sit in (the page may not grow,
// but the content is cut or spills over its section's border).
const spills = [...document.querySelectorAll('table, svg, pre, figure')].filter(e => {
  const box = e.parentElement.getBoundingClientRect();
  const style = getComputedStyle(e.parentElement);
  return e.getBoundingClientRect().right > box.right - parseFloat(style.paddingRight) + 1;
}).map(e => e.tagName.toLowerCase() + ': ' + e.textContent.slice(0, 40));
const out = document.createElement('pre');
out.id = 'measure';
out.textContent = JSON.stringify({
  window: window.innerWidth,
  page_width: root.scrollWidth,
  page_height: root.scrollHeight,
  min_chart_font: sizes.length ? Math.min(...sizes) : null,
  chart_texts: sizes.length,
  cut_labels: cut.map(t => t.textContent),
  spills: spills,
});
document.body.appendChild(out);
</script>"""


def chromium() -> str | None:
    """Path of a headless Chromium on PATH, or None."""
    for name in _CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(args: list[str]) -> str:
    binary = chromium()
    if binary is None:
        raise RuntimeError("no chromium on PATH; apt-get install chromium-headless-shell")
    # --no-sandbox: containers (and root) cannot use Chromium's sandbox.
    done = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--force-device-scale-factor=1", *args],
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def measure(page: Path, width: int) -> dict:
    """Layout figures of ``page`` in a ``width`` px wide window (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / page.name
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                         encoding="utf-8")
        dom = _run([f"--window-size={width},900", "--virtual-time-budget=5000",
                    "--dump-dom", probe.as_uri()])
    found = re.search(r"<pre id=\"measure\">(.*?)</pre>", dom, re.S)
    if not found:
        raise RuntimeError(f"the probe did not run in {page}")
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(page: Path, width: int, png: Path) -> Path:
    """A full-page PNG of ``page`` at ``width`` px (the window is as tall as the page)."""
    height = min(measure(page, width)["page_height"] + 20, 16_000)
    _run([f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()])
    return png


def build_reports(out: Path) -> dict[str, Path]:
    """Write the reports a newcomer's run makes, from bundled data: name -> HTML path."""
    from sklearn.model_selection import train_test_split

    from kfp_mlops.data.drift import detect_drift
    from kfp_mlops.data.generator import make_batch
    from kfp_mlops.data.report import html_report
    from kfp_mlops.data.schema import infer_schema
    from kfp_mlops.data.sources import load_table
    from kfp_mlops.data.stats import compute_statistics_from_frame
    from kfp_mlops.data.validation import validate
    from kfp_mlops.model.blessing import BlessingPolicy, bless
    from kfp_mlops.model.card import render_model_card
    from kfp_mlops.model.evaluate import evaluate_model
    from kfp_mlops.model.settings import TrainingSettings
    from kfp_mlops.model.train import train_model

    out.mkdir(parents=True, exist_ok=True)
    pages = {}

    # Breast cancer: 30 long feature names ("mean fractal dimension"), a champion
    # comparison with its long "why" sentences, published as v3 by a run.
    frame = load_table("breast_cancer")
    train, test = train_test_split(frame, test_size=0.3, random_state=0)
    model, metadata = train_model(train, TrainingSettings(
        target="target", task="classification", estimator="logistic_regression"))
    metadata.name = "breast-cancer"
    evaluation = evaluate_model(model, metadata, test, explain=True)
    champion = {k: v * 1.002 for k, v in evaluation.metrics.items()}
    verdict = bless(evaluation.metrics, champion, BlessingPolicy.default("classification"))
    page, _ = render_model_card(metadata, evaluation, blessing=verdict.to_dict(),
                                version=3, run_id="training-pipeline-x7k2p", stage="staging")
    pages["card_breast_cancer"] = out / "card_breast_cancer.html"
    pages["card_breast_cancer"].write_text(page, encoding="utf-8")

    # A small binary test split (69 rows, as the README's penguins run): a calibration
    # curve with too few points.
    penguins = load_table("penguins")
    penguins = penguins[penguins["species"] != "Chinstrap"]
    train, test = train_test_split(penguins, test_size=69, random_state=0)
    model, metadata = train_model(train, TrainingSettings(
        target="species", task="classification", estimator="logistic_regression"))
    metadata.name = "penguins"
    evaluation = evaluate_model(model, metadata, test, explain=True)
    page, _ = render_model_card(metadata, evaluation, version=1, run_id="run-1")
    pages["card_small"] = out / "card_small.html"
    pages["card_small"].write_text(page, encoding="utf-8")

    # Data validation report: penguins (missing values) against a schema from clean rows.
    full = load_table("penguins")
    schema = infer_schema(compute_statistics_from_frame(full.dropna()))
    stats = compute_statistics_from_frame(full)
    pages["data_report"] = out / "data_report.html"
    pages["data_report"].write_text(
        html_report(stats, validation=validate(stats, schema), title="Data report: penguins"),
        encoding="utf-8")

    # Drift report: the loan generator's reference world against its drifted one.
    reference, current = make_batch("reference", 2000, 1), make_batch("drifted", 2000, 3)
    current.loc[current.index[::9], "income"] = float("nan")  # some missing values too
    drift = detect_drift(reference, current, target="default")
    pages["drift_report"] = out / "drift_report.html"
    pages["drift_report"].write_text(
        html_report(drift.current_stats, drift=drift, title="Drift: batch3.csv vs batch1.csv",
                    reference_name="batch1.csv", current_name="batch3.csv"),
        encoding="utf-8")
    return pages


def main(argv: list[str]) -> int:
    """Build the reports, measure them and take screenshots at every width."""
    out = Path(argv[0] if argv else "reports-screenshots")
    pages = build_reports(out)
    if chromium() is None:
        print(f"reports written to {out}; no chromium on PATH, so no screenshots")
        return 1
    for name, page in pages.items():
        for width in WIDTHS:
            figures = measure(page, width)
            png = screenshot(page, width, out / f"{name}-{width}.png")
            print(f"{png}: page {figures['page_width']} px wide in a {width} px window, "
                  f"smallest chart text {figures['min_chart_font']:.1f} px, "
                  f"{len(figures['cut_labels'])} labels cut, {len(figures['spills'])} elements "
                  f"wider than their box {figures['spills'][:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
