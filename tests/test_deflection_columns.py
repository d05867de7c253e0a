"""The deflection replay on an export whose headers no alias list knows (issue 16, part 3).

Reproduces the report: a history whose date column is 起票日時, whose id is チケット番号
and whose product column is 対象サービス. Before, the dates were not recognized (the replay
refused the file until told --time-column), and *with* --time-column the override reached
the replay's case list but not the ingest of the index it searches: no indexed case had a
date, the "opened before" filter excluded them all, and the replay reported 0.0 at every
threshold with no problem listed. Now the date is recognized by its values, an override
reaches every step, and a replay whose searches cannot see the history refuses with the
reason.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import SAMPLES, run_cli

pytestmark = pytest.mark.slow

RENAME = {"受付番号": "チケット番号", "受付日時": "起票日時", "製品": "対象サービス"}
ROWS = 150  # the first 150 cases of the sample history (Jan 2024 – mid 2025): enough to replay, quick to embed


@pytest.fixture(scope="module")
def renamed_history(tmp_path_factory):
    text = (SAMPLES / "escalations" / "escalation_history.csv").read_bytes().decode("cp932")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = [RENAME.get(h, h) for h in rows[0]]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows[1:ROWS + 1])
    path = tmp_path_factory.mktemp("renamed") / "ticket_export.csv"
    path.write_bytes(buf.getvalue().encode("cp932"))
    return path


def test_replay_reads_the_renamed_export_without_options(renamed_history, make_home, model_dir):
    home = make_home("deflect-renamed")
    r = run_cli("eval", "deflection", "--history", str(renamed_history), "--json", env_home=home, model=model_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "date ← 起票日時 (values:" in r.stderr and "product ← 対象サービス (name)" in r.stderr, r.stderr
    assert out["cases"] >= 50
    assert out["ceiling_all"] > 0.5  # most replayed cases have an earlier case of their group
    assert max(s["deflection_rate"] for s in out["sweep"]) > 0.5


def test_time_column_override_reaches_the_index_the_replay_searches(renamed_history, use_home):
    """The issue's exact run: --time-column 起票日時. Every replayed search must see earlier cases."""
    from hikitsugi.eval.deflection import run_deflection

    result = run_deflection(renamed_history, use_home, k=5, time_column="起票日時")
    assert result["cases"] >= 50
    assert any(c["top"] for c in result["per_case"]), "no replayed search saw the history"
    assert sum(bool(c["top"]) for c in result["per_case"]) >= 0.95 * result["cases"]
    assert max(s["deflection_rate"] for s in result["sweep"]) > 0.5
    assert "date ← 起票日時 (mapping)" in result["columns"]


def test_replay_refuses_when_its_index_cannot_see_the_history(renamed_history, use_home):
    """The guard itself: an index built without the date (the old bug) or with the cases as
    notes makes the replay refuse, saying why — never a silent 0 %."""
    from hikitsugi.eval.deflection import ReplayRefused, _load_cases, check_replay_sees_history, column_overrides
    from hikitsugi.eval.home import throwaway_home
    from hikitsugi.index.update import ingest_paths

    overrides = column_overrides(time_column="起票日時")
    cases, _, columns = _load_cases(renamed_history, overrides, None)
    with throwaway_home(use_home, "hikitsugi-test-refuse-") as s:
        ingest_paths([renamed_history], s, mapping={"date": "対象サービス"})  # the index gets no usable date
        with pytest.raises(ReplayRefused) as exc:
            check_replay_sees_history(cases, s, columns)
        msg = str(exc.value)
        assert f"{len(cases)} of {len(cases)} replayed cases have no date in the index" in msg, msg
        assert "--time-column" in msg
        ingest_paths([renamed_history], s, mapping=overrides, kind="note")  # same dates, but as notes
        with pytest.raises(ReplayRefused, match="indexed as notes"):
            check_replay_sees_history(cases, s, columns)
        ingest_paths([renamed_history], s, mapping=overrides, kind="case")
        check_replay_sees_history(cases, s, columns)  # now it sees them: no error
