"""The search behind a tuning job: one Optuna study that proposes trials and decides early stops.

Strategies map to Optuna parts rather than code of our own:
- Random: `RandomSampler`; Bayesian: `TPESampler` (the constant-liar variant, so that trials running in
  parallel are not proposed twice); both seeded from RandomSeed.
- Grid: every combination of the categorical values, enqueued in the order the request lists them, so the
  grid is covered exactly once.
- Hyperband: `TPESampler` proposals, `HyperbandPruner` fed the intermediate objective values.
- TrainingJobEarlyStoppingType Auto: `MedianPruner`, SageMaker's median stopping rule.
With several training job definitions, the definition is itself a categorical choice and each definition's
hyperparameters are named `<DefinitionName>.<hyperparameter>` in the study.

Past trials (a warm start's parents, or this job's own trials when a restarted server resumes it) are added
to the study as finished trials, so samplers and pruners learn from them.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import deque
from collections.abc import Iterable
from typing import Any

import optuna
from optuna.trial import TrialState, create_trial

from sagelab.tuning.spec import BAYESIAN, GRID, HYPERBAND, RANDOM, TrainingDefinition, TuningJobSpec

DEFINITION_PARAM = "TrainingJobDefinitionName"
#: Median stopping: completed trials needed before any trial is stopped, and steps always allowed.
MEDIAN_STARTUP_TRIALS = 3
MEDIAN_WARMUP_STEPS = 1
HYPERBAND_REDUCTION_FACTOR = 3


@dataclasses.dataclass
class Proposal:
    """One trial the search asked for: its definition, hyperparameter strings and Optuna trial."""

    definition: TrainingDefinition
    tuned: dict[str, str]
    trial: optuna.trial.Trial
    steps: int = 0
    last_value: float | None = None


@dataclasses.dataclass(frozen=True)
class PastTrial:
    definition: str | None
    #: Every hyperparameter the trial ran with (static and tuned), so a warm start can tune a formerly
    #: static one.
    hyperparameters: dict[str, str]
    state: str  # complete | pruned | failed
    value: float | None = None
    intermediate: tuple[float, ...] = ()


def _startup_trials(budget: int) -> int:
    """Random proposals before TPE models the results: a fifth of the budget, between 3 and 10."""
    return max(3, min(10, budget // 5))


class Search:
    def __init__(self, spec: TuningJobSpec):
        # Optuna logs every trial at INFO and flags multivariate TPE as experimental: noise in the server's log.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.spec = spec
        self._multi = len(spec.definitions) > 1
        # Named after the job: Hyperband assigns trials to brackets by a hash of the study's name.
        self.study = optuna.create_study(study_name=spec.name,
                                         direction="maximize" if spec.objective_type == "Maximize" else "minimize",
                                         sampler=self._sampler(), pruner=self._pruner())
        self._grid: deque[tuple[TrainingDefinition, dict[str, str]]] = deque(
            (d, combo) for d in spec.definitions for combo in d.grid()) if spec.strategy == GRID else deque()

    def _sampler(self) -> optuna.samplers.BaseSampler:
        seed = self.spec.random_seed
        if self.spec.strategy in (BAYESIAN, HYPERBAND):
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=_startup_trials(self.spec.max_jobs),
                                              multivariate=True, group=self._multi, constant_liar=True)
        # Random search; a grid's trials are all enqueued, so its sampler never chooses a value.
        return optuna.samplers.RandomSampler(seed=seed)

    def _pruner(self) -> optuna.pruners.BasePruner:
        if self.spec.hyperband is not None:
            return optuna.pruners.HyperbandPruner(min_resource=self.spec.hyperband.min_resource,
                                                  max_resource=self.spec.hyperband.max_resource,
                                                  reduction_factor=HYPERBAND_REDUCTION_FACTOR)
        if self.spec.early_stopping:
            return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS,
                                               n_warmup_steps=MEDIAN_WARMUP_STEPS)
        return optuna.pruners.NopPruner()

    @property
    def prunes(self) -> bool:
        return self.spec.hyperband is not None or self.spec.early_stopping

    # --- names in the study ---------------------------------------------------------------------------
    def _param(self, definition: TrainingDefinition, hyperparameter: str) -> str:
        return f"{definition.name}.{hyperparameter}" if self._multi else hyperparameter

    def _fixed_params(self, definition: TrainingDefinition, tuned: dict[str, str]) -> dict[str, Any] | None:
        params: dict[str, Any] = {DEFINITION_PARAM: definition.name} if self._multi else {}
        for item in definition.ranges:
            internal = item.from_hyperparameter(tuned.get(item.name))
            if internal is None:
                return None
            params[self._param(definition, item.name)] = internal
        return params

    # --- proposing ------------------------------------------------------------------------------------
    def propose(self) -> Proposal | None:
        """The next trial to run, or None when a grid has been covered."""
        if self.spec.strategy == GRID:
            if not self._grid:
                return None
            definition, combo = self._grid.popleft()
            self.study.enqueue_trial(self._fixed_params(definition, combo))
        return self._ask()

    def resume(self, definition: TrainingDefinition, tuned: dict[str, str]) -> Proposal:
        """Re-attach a trial that was already running (a restarted server resuming its tuning job)."""
        self._forget_grid(definition, tuned)
        params = self._fixed_params(definition, tuned)
        if params is not None:
            self.study.enqueue_trial(params)
        proposal = self._ask()
        proposal.definition, proposal.tuned = definition, dict(tuned)
        return proposal

    def _ask(self) -> Proposal:
        trial = self.study.ask()
        definition = self.spec.definitions[0]
        if self._multi:
            name = trial.suggest_categorical(DEFINITION_PARAM, [d.name for d in self.spec.definitions])
            definition = next(d for d in self.spec.definitions if d.name == name)
        tuned = {item.name: item.to_hyperparameter(item.suggest(trial, self._param(definition, item.name)))
                 for item in definition.ranges}
        return Proposal(definition=definition, tuned=tuned, trial=trial)

    def _distribution(self, definition: TrainingDefinition, param: str):
        for item in definition.ranges:
            if self._param(definition, item.name) == param:
                return item.distribution()
        return None

    def _forget_grid(self, definition: TrainingDefinition, tuned: dict[str, str]) -> None:
        self._grid = deque(entry for entry in self._grid if not (entry[0] is definition and entry[1] == tuned))

    # --- hearing back ---------------------------------------------------------------------------------
    def report(self, proposal: Proposal, value: float, *, decide: bool = True) -> bool:
        """Record the next intermediate value; True when the trial should be stopped now."""
        proposal.steps += 1
        proposal.last_value = value
        proposal.trial.report(value, proposal.steps)
        return decide and self.prunes and proposal.trial.should_prune()

    def complete(self, proposal: Proposal, value: float) -> None:
        self.study.tell(proposal.trial, value)

    def pruned(self, proposal: Proposal) -> None:
        state = TrialState.PRUNED if proposal.steps else TrialState.FAIL
        self.study.tell(proposal.trial, state=state)

    def failed(self, proposal: Proposal, *, retry: bool = False) -> None:
        self.study.tell(proposal.trial, state=TrialState.FAIL)
        if retry and self.spec.strategy == GRID:
            self._grid.appendleft((proposal.definition, dict(proposal.tuned)))

    # --- learning from the past -----------------------------------------------------------------------
    def seed(self, past: Iterable[PastTrial], *, own: bool = False) -> int:
        """Add finished trials to the study; returns how many fit this job's search space.

        `own` trials are this job's (a resume): for a grid, their combinations are not run again.
        """
        added = 0
        for item in past:
            definition = self.spec.definition(item.definition)
            if definition is None:
                continue
            if own:
                self._forget_grid(definition, {r.name: item.hyperparameters.get(r.name, "") for r in definition.ranges})
            params = self._fixed_params(definition, item.hyperparameters)
            if params is None or item.state == "failed" or (item.state == "complete" and item.value is None):
                continue
            distributions = {key: self._distribution(definition, key) for key in params}
            if self._multi:
                distributions[DEFINITION_PARAM] = optuna.distributions.CategoricalDistribution(
                    [d.name for d in self.spec.definitions])
            state = TrialState.COMPLETE if item.state == "complete" else TrialState.PRUNED
            self.study.add_trial(create_trial(
                state=state, value=item.value if state == TrialState.COMPLETE else None, params=params,
                distributions=distributions,
                intermediate_values={step: v for step, v in enumerate(item.intermediate, start=1)}))
            added += 1
        return added


__all__ = ["BAYESIAN", "GRID", "HYPERBAND", "RANDOM", "PastTrial", "Proposal", "Search"]
