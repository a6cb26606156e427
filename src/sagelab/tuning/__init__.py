"""Automatic model tuning: hyperparameter tuning jobs that run real training jobs as their trials.

`spec` validates a CreateHyperParameterTuningJob request once; `space` maps parameter ranges to Optuna
distributions; `search` holds the Optuna study that proposes trials and decides early stops; `driver` is
the loop that launches, watches and settles trials; `service` is the API the SageMaker face calls.
"""
