"""Reports people read: one JSON file for machines and one self-contained HTML page with
plots (matplotlib PNGs embedded as data URIs) for every evaluation run.

Plot labels are in English because the machines we run on have no Japanese font for
matplotlib; the Japanese queries appear in the HTML tables, which the browser renders.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def recall_plot(metrics: dict[str, dict[str, float]], title: str) -> str:
    modes = list(metrics)
    ks = ["hit@1", "hit@5", "recall@5", "recall@10", "mrr@10", "ndcg@10"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(1, len(modes))
    for i, m in enumerate(modes):
        ax.bar([x + i * width for x in range(len(ks))], [metrics[m][k] or 0.0 for k in ks], width, label=m)
    ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(ks))], ks)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def latency_plot(latencies: dict[str, list[float]]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3))
    for mode, lat in latencies.items():
        ax.hist(lat, bins=40, alpha=0.5, label=mode)
    ax.set_xlabel("query latency (ms)")
    ax.set_ylabel("queries")
    ax.legend()
    return _png(fig)


def deflection_plot(sweep: list[dict[str, float]], recommended: float) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    t = [s["threshold"] for s in sweep]
    ax.plot(t, [s["deflection_rate"] for s in sweep], marker="o", ms=3, label="deflection rate")
    ax.plot(t, [s["wrong_suggestion_rate"] for s in sweep], marker="o", ms=3, label="wrong-suggestion rate")
    ax.axvline(recommended, color="grey", ls="--", label=f"recommended {recommended}")
    ax.set_xlabel("confidence threshold (cosine of best hit)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def weekly_plot(weeks: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot([w["week"] for w in weeks], [w["self_resolution_rate"] for w in weeks], marker="o")
    ax.set_ylim(0, 1)
    ax.set_ylabel("self-resolution rate")
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3)
    return _png(fig)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(out_dir: Path, name: str, title: str, data: dict[str, Any], sections: list[tuple[str, str]]) -> Path:
    """Write ``<name>.json`` and ``<name>.html`` (sections are (heading, html) pairs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    parts = []
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{body}")
    page = f"""<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:"Noto Sans JP",sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#1d2433}}
table{{border-collapse:collapse;font-size:13px;margin:8px 0}}td,th{{border:1px solid #d9dee8;padding:3px 6px;text-align:left;vertical-align:top}}
th{{background:#eef2f8}}img{{max-width:100%}}</style></head><body><h1>{html.escape(title)}</h1>
{''.join(parts)}</body></html>"""
    path = out_dir / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    return path


def img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{html.escape(alt)}">'
