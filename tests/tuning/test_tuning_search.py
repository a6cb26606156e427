"""The search in-process: scaling, seeding, grids and warm-start seeding, without running trials."""

from __future__ import annotations

import math
import statistics

import pytest
from tuning_helpers import config, definition

from sagelab.algorithms.registry import AlgorithmRegistry, builtin_algorithms
from sagelab.tuning.progress import ObjectiveLog
from sagelab.tuning.search import PastTrial, Search
from sagelab.tuning.spec import parse_tuning_job
from sagelab.tuning.states import Trial, not_improving

STATIC = {"num_round": "5", "objective": "binary:logistic"}


@pytest.fixture(scope="module")
def registry() -> AlgorithmRegistry:
    return AlgorithmRegistry(builtin_algorithms())


def _spec(registry, strategy: str, ranges: dict, *, max_jobs: int | None = 50, seed: int | None = 0, **extra):
    cfg = config(strategy, ranges, max_jobs=max_jobs, **({"RandomSeed": seed} if seed is not None else {}))
    request = {"HyperParameterTuningJobName": "unit", "HyperParameterTuningJobConfig": cfg,
               "TrainingJobDefinition": definition("bucket", dict(STATIC)), **extra}
    return parse_tuning_job(request, registry)


def _draw(search: Search, count: int) -> list[dict[str, str]]:
    out = []
    for _ in range(count):
        proposal = search.propose()
        out.append(proposal.tuned)
        search.complete(proposal, 0.5)
    return out


def _continuous(name: str, low: str, high: str, scaling: str) -> dict:
    return {"ContinuousParameterRanges": [{"Name": name, "MinValue": low, "MaxValue": high, "ScalingType": scaling}]}


def test_logarithmic_scaling_spreads_over_decades(registry):
    log = [float(t["eta"]) for t in _draw(Search(_spec(registry, "Random", _continuous(
        "eta", "0.0001", "1", "Logarithmic"))), 400)]
    linear = [float(t["eta"]) for t in _draw(Search(_spec(registry, "Random", _continuous(
        "eta", "0.0001", "1", "Linear"))), 400)]
    assert all(0.0001 <= v <= 1 for v in log + linear)
    # Each of the four decades gets about a quarter of log-uniform draws.
    for decade in range(-4, 0):
        share = sum(10.0 ** decade <= v < 10.0 ** (decade + 1) for v in log) / len(log)
        assert 0.15 < share < 0.35, (decade, share)
    assert sum(v < 0.01 for v in linear) / len(linear) < 0.05
    assert abs(statistics.median(math.log10(v) for v in log) + 2) < 0.3


def test_reverse_logarithmic_crowds_values_near_the_top(registry):
    values = [float(t["subsample"]) for t in _draw(Search(_spec(registry, "Random", _continuous(
        "subsample", "0.5", "0.999", "ReverseLogarithmic"))), 300)]
    assert all(0.5 <= v <= 0.999 for v in values)
    assert statistics.median(values) > 0.95
    assert sum(v > 0.99 for v in values) / len(values) > 0.25


def test_integer_ranges_give_integers_and_log_scaling(registry):
    ranges = {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "1000",
                                          "ScalingType": "Logarithmic"}]}
    values = [t["max_depth"] for t in _draw(Search(_spec(registry, "Random", ranges)), 300)]
    assert all(v.isdigit() and 1 <= int(v) <= 1000 for v in values)
    assert sum(int(v) < 32 for v in values) / len(values) > 0.35  # log-uniform: about half below sqrt(1000)


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_random_seed_makes_proposals_repeatable(registry, strategy):
    ranges = {**_continuous("eta", "0.01", "0.5", "Logarithmic"),
              "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "8"}]}
    first = _draw(Search(_spec(registry, strategy, ranges, seed=42)), 15)
    again = _draw(Search(_spec(registry, strategy, ranges, seed=42)), 15)
    other = _draw(Search(_spec(registry, strategy, ranges, seed=43)), 15)
    assert first == again and first != other


def test_grid_yields_each_combination_once_then_stops(registry):
    ranges = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "3"]},
                                             {"Name": "eta", "Values": ["0.1", "0.2", "0.3"]}]}
    spec = _spec(registry, "Grid", ranges, max_jobs=None)
    assert spec.max_jobs == 6
    search = Search(spec)
    seen = _draw(search, 6)
    assert [(t["max_depth"], t["eta"]) for t in seen] == [
        ("2", "0.1"), ("2", "0.2"), ("2", "0.3"), ("3", "0.1"), ("3", "0.2"), ("3", "0.3")]
    assert search.propose() is None


def test_a_resumed_grid_skips_what_already_ran(registry):
    ranges = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "3", "4"]}]}
    search = Search(_spec(registry, "Grid", ranges, max_jobs=None))
    search.seed([PastTrial(definition=None, hyperparameters={**STATIC, "max_depth": "3"}, state="complete",
                           value=0.9)], own=True)
    running = search.resume(search.spec.definitions[0], {"max_depth": "2"})
    assert running.tuned == {"max_depth": "2"}
    assert [t["max_depth"] for t in _draw(search, 1)] == ["4"]
    assert search.propose() is None


def test_warm_start_seeds_the_study_with_trials_inside_the_new_ranges(registry):
    search = Search(_spec(registry, "Bayesian", _continuous("eta", "0.1", "0.3", "Linear")))
    parents = [PastTrial(definition=None, hyperparameters={**STATIC, "eta": eta}, state=state, value=value,
                         intermediate=(0.5, value or 0.4))
               for eta, state, value in [("0.15", "complete", 0.91), ("0.25", "complete", 0.95),
                                         ("0.2", "pruned", None), ("0.9", "complete", 0.99),  # outside: skipped
                                         ("0.12", "failed", None)]]  # failed: nothing to learn
    assert search.seed(parents) == 3
    trials = search.study.trials
    assert [t.params["eta"] for t in trials] == [0.15, 0.25, 0.2]
    assert search.study.best_value == 0.95
    assert trials[2].intermediate_values == {1: 0.5, 2: 0.4}


def test_objective_log_reads_complete_lines_as_they_arrive(tmp_path):
    path = tmp_path / "trial.log"
    log = ObjectiveLog(path, r".*\[[0-9]+\].*\tvalidation-auc:([-+]?[0-9]*\.?[0-9]+).*")
    assert log.read_new() == []
    path.write_text("[0]\ttrain-auc:0.8\tvalidation-auc:0.75\n[1]\ttrain-auc:0.9\tvalid")
    assert log.read_new() == [0.75]
    with path.open("a") as f:
        f.write("ation-auc:0.8125\nnoise\n[2]\tvalidation-auc:0.9\n")
    assert log.read_new() == [0.8125, 0.9]
    assert log.read_new() == []


def test_not_improving_counts_the_latest_trials_without_a_real_gain():
    def trials(values):
        return [Trial(name=f"t{i}", arn="", definition=None, tuned={}, created=0.0, status="Completed",
                      objective=v, objective_status="Succeeded", settled=i) for i, v in enumerate(values, start=1)]

    assert not_improving(trials([0.80, 0.85, 0.851, 0.849, 0.855]), "Maximize") == 3  # gains under 1 %
    assert not_improving(trials([0.80, 0.90]), "Maximize") == 0
    assert not_improving(trials([0.5, 0.4, 0.41, 0.45]), "Minimize") == 2
    assert not_improving([], "Maximize") == 0
