"""scripts/mutation_report.py: a part's mutants read from mutmut's results, counted and explained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import mutation_report as report

RESULTS = """\
    lra_snn.results.runs.x_run_of__mutmut_1: killed
    lra_snn.results.runs.x_run_of__mutmut_2: survived
    lra_snn.results.runs.xǁRunǁkey__mutmut_1: timeout
    lra_snn.results.schema.x_digest__mutmut_7: no tests
    lra_snn.results.schema.x_digest__mutmut_8: killed
    lra_snn.resultsx.other.x_f__mutmut_1: survived
    lra_snn.eval.x_main__mutmut_1: killed
"""


def test_the_parts_are_the_subpackages_and_the_top_level_modules():
    assert report.parts()[0] == "top" and {"results", "ops", "data", "cli"} <= set(report.parts())
    assert report.mutant_globs("results") == ["lra_snn.results.*"]
    assert report.mutant_globs("top") == ["lra_snn.eval.*", "lra_snn.train.*"]


def test_mutant_names_are_read_and_placed_in_their_module():
    statuses = report.read_results(RESULTS)
    assert statuses["lra_snn.results.schema.x_digest__mutmut_7"] == "no tests" and len(statuses) == 7
    assert report.module_of("lra_snn.results.runs.xǁRunǁkey__mutmut_1") == "lra_snn.results.runs"
    assert report.in_part("lra_snn.eval", "top") and not report.in_part("lra_snn.resultsx.other", "results")
    with pytest.raises(ValueError, match="not a mutmut mutant name"):
        report.module_of("lra_snn.results")


def test_a_part_counts_caught_mutants_and_lists_the_others_with_their_explanation():
    explained = {"lra_snn.results.runs.x_run_of__mutmut_2": "sorts an already sorted list"}
    record = report.part_record("results", report.read_results(RESULTS), explained, "abc123")
    assert (record["mutants"], record["caught"], record["kill_rate"]) == (5, 3, 0.6)
    assert record["modules"] == {
        "lra_snn.results.runs": {"killed": 1, "survived": 1, "timeout": 1},
        "lra_snn.results.schema": {"no tests": 1, "killed": 1},
    }
    assert record["survivors"] == [
        {
            "name": "lra_snn.results.runs.x_run_of__mutmut_2",
            "status": "survived",
            "explanation": explained["lra_snn.results.runs.x_run_of__mutmut_2"],
        },
        {"name": "lra_snn.results.schema.x_digest__mutmut_7", "status": "no tests", "explanation": None},
    ]
    text = report.summary_markdown([record])
    assert "| results | abc123 | 5 | 3 | 60.0 % | 1 of 2 |" in text
    assert "5 mutants, 3 caught (60.0 %), 1 of 2 survivors explained" in text
    assert "- `lra_snn.results.schema.x_digest__mutmut_7` (results, no tests)" in text
    assert "Parts not run yet: top, cli," in text
    with pytest.raises(SystemExit, match="no mutmut results for part 'optim'"):
        report.part_record("optim", report.read_results(RESULTS), {}, "abc123")
