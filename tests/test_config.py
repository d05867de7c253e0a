"""Configuration that cannot silently vanish: the shipped defaults are found wherever the
package is installed, a configured file that is missing or broken is an error naming its
path, and docs/configuration.md is the settings' own reference."""

from __future__ import annotations

import os

import pytest
from conftest import REPO, run_cli

from hikitsugi.config import ConfigError, Settings, reference_markdown
from hikitsugi.guidance.decide import decide
from hikitsugi.guidance.rules import load_rules, rules_path
from hikitsugi.search.synonyms import load_groups, synonyms_path


def test_docs_configuration_is_generated_from_the_settings():
    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert doc == reference_markdown(), "regenerate: hikitsugi config reference > docs/configuration.md"
    for name in Settings.model_fields:
        assert f"`HIKITSUGI_{name.upper()}`" in doc


def test_shipped_defaults_are_package_data_and_hold_the_safety_rules(tmp_path):
    s = Settings(home=tmp_path)
    path = rules_path(s)
    assert path.parent.name == "defaults" and path.parent.parent.name == "hikitsugi"
    rules, _ = load_rules(s)
    assert "life_or_body" in {r["id"] for r in rules}
    g = decide("お客様が転倒して怪我をしたと連絡", None, [], [], s)
    assert g.action == "escalate" and "life_or_body" in g.rules
    assert synonyms_path(s).parent == path.parent and load_groups(synonyms_path(s))


def test_own_file_in_the_home_overrides_the_default(tmp_path):
    (tmp_path / "escalation_rules.yaml").write_text(
        "- id: own_rule\n  reason: 自社ルール\n  keywords: [テスト語]\n", encoding="utf-8")
    s = Settings(home=tmp_path)
    assert rules_path(s) == tmp_path / "escalation_rules.yaml"
    assert decide("テスト語が出た", None, [], [], s).rules == ["own_rule"]


@pytest.mark.parametrize("content, words", [
    (None, "file not found"),
    ("- id: [unclosed\n", "invalid YAML"),
    ("[]\n", "non-empty list of rules"),
    ("- keywords: [火事]\n", "needs at least 'id' and 'reason'"),
])
def test_configured_rules_file_missing_or_invalid_is_an_error_naming_it(tmp_path, content, words):
    f = tmp_path / "my_rules.yaml"
    if content is not None:
        f.write_text(content, encoding="utf-8")
    s = Settings(home=tmp_path, rules_file=str(f))
    with pytest.raises(ConfigError) as exc:
        decide("火事です", None, [], [], s)
    assert str(f) in str(exc.value) and words in str(exc.value)


def test_configured_synonyms_file_missing_is_an_error(tmp_path):
    s = Settings(home=tmp_path, synonyms_file=str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_groups(synonyms_path(s))


def test_cli_and_server_refuse_a_missing_rules_file(sample_home, model_dir, tmp_path):
    missing = tmp_path / "typo_rules.yaml"
    os.environ["HIKITSUGI_RULES_FILE"] = str(missing)
    try:
        r = run_cli("search", "紙詰まり", env_home=sample_home, model=model_dir)
        assert r.returncode == 2 and str(missing) in r.stderr and "file not found" in r.stderr
        r = run_cli("serve", "--port", "1", env_home=sample_home, model=model_dir)
        assert r.returncode == 2 and str(missing) in r.stderr
    finally:
        del os.environ["HIKITSUGI_RULES_FILE"]
