"""The log lines SageMaker's first-party (1P) algorithms print, and the MetricDefinitions that read them.

Real 1P job logs carry lines like
    #quality_metric: host=algo-1, epoch=0, train binary_classification_accuracy <score>=0.93
    #test_score (algo-1) : ('binary_classification_accuracy', 0.95)
    #quality_metric: host=algo-1, test rmse <loss>=1.27
    #progress_metric: host=algo-1, completed 100 % of epochs
    #throughput_metric: host=algo-1, train throughput=58678.68 records/second
and SageMaker's service-side MetricDefinitions are regexes over them (reference §0.5).
"""

from __future__ import annotations

from sagelab.algorithms.base import MetricDefinition, TrainingContext

HOST = "algo-1"


def quality(ctx: TrainingContext, channel: str, name: str, value: float, *, tag: str = "loss",
            epoch: int | None = None) -> None:
    where = f"epoch={epoch}, " if epoch is not None else ""
    ctx.print(f"#quality_metric: host={HOST}, {where}{channel} {name} <{tag}>={float(value)!r}")


def test_scores(ctx: TrainingContext, values: dict[str, tuple[float, str]]) -> None:
    """The end-of-training report on the test channel: {name: (value, "loss" | "score")}."""
    for name, (value, _) in values.items():
        ctx.print(f"#test_score ({HOST}) : ({name!r}, {float(value)!r})")
    for name, (value, tag) in values.items():
        quality(ctx, "test", name, value, tag=tag)


def progress(ctx: TrainingContext, done: int, total: int) -> None:
    ctx.print(f"#progress_metric: host={HOST}, completed {int(round(100 * done / max(total, 1)))} % of epochs")


def throughput(ctx: TrainingContext, records_per_second: float) -> None:
    ctx.print(f"#throughput_metric: host={HOST}, train throughput={records_per_second:.2f} records/second")


def progress_definitions() -> tuple[MetricDefinition, ...]:
    return (MetricDefinition("train:progress", r"#progress_metric: host=\S+, completed (\S+) %", "Maximize"),
            MetricDefinition("train:throughput", r"#throughput_metric: host=\S+, train throughput=(\S+) records/second",
                             "Maximize"))


def definition(channel: str, name: str, pattern: str, tag: str, direction: str) -> MetricDefinition:
    """`<channel>:<name>` read from the final (epoch-less) `#quality_metric` line; `pattern` is the logged name
    as a regex (`binary_f_\\S+` for the F-beta score that prints its beta)."""
    return MetricDefinition(f"{channel}:{name}", rf"#quality_metric: host=\S+, {channel} {pattern} <{tag}>=(\S+)",
                            direction)
