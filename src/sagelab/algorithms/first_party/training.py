"""The training side that SageMaker's first-party (1P) algorithms share: K-Means, PCA and k-NN read their
channels the same way and print the same kinds of log lines.

Channels hold recordIO-protobuf (the default, as the SageMaker SDK's `record_set` writes it) or CSV with a
`label_size` content-type parameter (default 1: the first column is the label; unsupervised jobs pass
`text/csv;label_size=0`). Data comes back as a dense float32 matrix: these algorithms work on dense vectors
(K-Means is even told so by the SDK's `force_dense=True`).

Log lines follow the 1P format that SageMaker's MetricDefinitions read (seen in real job logs):
    #quality_metric: host=algo-1, train msd <loss>=0.0657
    #progress_metric: host=algo-1, completed 100.0 % of epochs
    #throughput_metric: host=algo-1, train throughput=58678.68 records/second
"""

from __future__ import annotations

import time

import numpy as np

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import io as onep_io

HOST = "algo-1"
PROTOBUF = onep_io.PROTOBUF


def train_and_test_channels() -> tuple[ChannelSpec, ...]:
    """`train` (required) and `test` (optional), protobuf by default, as K-Means, PCA and k-NN declare."""
    kinds = onep_io.TRAINING_CONTENT_TYPES
    return (ChannelSpec("train", required=True, content_types=kinds, default_content_type=PROTOBUF),
            ChannelSpec("test", content_types=kinds, default_content_type=PROTOBUF))


def read_channel(ctx: TrainingContext, name: str, *, feature_dim: int, label_size: int = 1,
                 label_required: bool = False) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The channel's records as (dense float32 features, float64 labels or None); None when the job has no such
    channel. `first_party.io` checks that every record has `feature_dim` finite features."""
    channel = ctx.channels.get(name)
    if channel is None:
        return None
    x, y = onep_io.read_training_channel(channel, label_size=label_size, feature_dim=feature_dim,
                                         label_required=label_required, dense=True)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[0] == 0:
        raise DataError(f"Channel '{name}' holds no records.")
    if y is not None:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim > 1:  # several label values per record: the first is the label
            y = y[:, 0]
    return x, y


def quality_metric(ctx: TrainingContext, channel: str, name: str, value: float, tag: str = "loss") -> None:
    ctx.print(f"#quality_metric: host={HOST}, {channel} {name} <{tag}>={float(value)!r}")


def progress_metric(ctx: TrainingContext, done: int, total: int) -> None:
    ctx.print(f"#progress_metric: host={HOST}, completed {100.0 * done / max(total, 1):.1f} % of epochs")


class Throughput:
    """Records per second over the training passes, logged as `#throughput_metric`."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def report(self, ctx: TrainingContext, records: int) -> None:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        ctx.print(f"#throughput_metric: host={HOST}, train throughput={records / seconds!r} records/second")


def progress_and_throughput_metrics() -> tuple[MetricDefinition, ...]:
    """The service-side definitions every 1P algorithm job carries."""
    return (
        MetricDefinition("train:progress", r"#progress_metric: host=\S+, completed (\S+) %", "Maximize"),
        MetricDefinition("train:throughput", r"#throughput_metric: host=\S+, train throughput=(\S+) records/second",
                         "Maximize"),
    )


def quality_metric_regex(channel: str, name: str, tag: str = "loss") -> str:
    return rf"#quality_metric: host=\S+, {channel} {name} <{tag}>=(\S+)"
