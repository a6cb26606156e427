"""A training job request, validated once into a typed spec.

The wire shapes (types, required members, enums, patterns) are already checked against botocore's model
by the API layer; this module checks what only sagelab knows: the algorithm the image selects, its
hyperparameters, its channels and content types, and the S3 locations.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sagelab.algorithms.base import Algorithm, MetricDefinition, ScriptModeAlgorithm, split_content_type
from sagelab.algorithms.registry import AlgorithmRegistry, entry_point_of_hyperparameters
from sagelab.errors import ValidationError
from sagelab.lake.uris import S3Uri, parse_s3_uri

DEFAULT_MAX_RUNTIME = 86400
#: Where a training script writes checkpoints when CheckpointConfig names no LocalPath (as on SageMaker).
DEFAULT_CHECKPOINT_PATH = "/opt/ml/checkpoints"


@dataclasses.dataclass(frozen=True)
class ChannelConfig:
    name: str
    uri: S3Uri
    data_type: str  # S3Prefix | ManifestFile | AugmentedManifestFile
    content_type: str  # lower-case main type, "" when the request gave none
    content_params: dict[str, str]
    compression: str  # None | Gzip
    #: AugmentedManifestFile: the attributes of each manifest line to feed, in order.
    attribute_names: tuple[str, ...] = ()
    #: None | RecordIO: whether each fed item is wrapped in a recordIO frame.
    record_wrapper: str = "None"


@dataclasses.dataclass(frozen=True)
class CheckpointSpec:
    #: Where checkpoints are kept between attempts; synced both ways with `local_path`.
    uri: S3Uri
    #: The container path the script writes them to (under /opt/ml).
    local_path: str = DEFAULT_CHECKPOINT_PATH


@dataclasses.dataclass(frozen=True)
class SpotSpec:
    """Managed spot training: the job may be interrupted and restarted until `max_wait` seconds have passed
    since it was created."""

    max_wait: int


@dataclasses.dataclass(frozen=True)
class TrainingJobSpec:
    name: str
    algorithm: Algorithm
    hyperparameters: dict[str, Any]
    raw_hyperparameters: dict[str, str]
    channels: tuple[ChannelConfig, ...]
    output: S3Uri
    max_runtime: int
    metric_definitions: tuple[MetricDefinition, ...]
    instance_count: int = 1
    spot: SpotSpec | None = None
    checkpoint: CheckpointSpec | None = None
    #: OutputDataConfig.KmsKeyId: the artifacts are written with SSE-KMS under it ("" for none).
    output_kms_key_id: str = ""


def _metric_definitions(algorithm: Algorithm, user: list[dict[str, str]]) -> tuple[MetricDefinition, ...]:
    """The algorithm's own metrics, plus the user's MetricDefinitions (which win on a name clash)."""
    merged = {m.name: m for m in algorithm.metrics}
    for item in user:
        merged[item["Name"]] = MetricDefinition(item["Name"], item["Regex"])
    return tuple(merged.values())


def parse_training_job(params: dict[str, Any], registry: AlgorithmRegistry) -> TrainingJobSpec:
    spec = params.get("AlgorithmSpecification") or {}
    image = spec.get("TrainingImage") or spec.get("AlgorithmName")
    if not image:
        raise ValidationError("AlgorithmSpecification must name a TrainingImage (or an AlgorithmName).")
    raw_hp = {str(k): str(v) for k, v in (params.get("HyperParameters") or {}).items()}
    algorithm = registry.for_image(image, entry_point=entry_point_of_hyperparameters(raw_hp))
    open_channels = isinstance(algorithm, ScriptModeAlgorithm)  # a user script reads whatever it is given
    hyperparameters = algorithm.hyperparameters.validate(raw_hp)

    declared = {name: c for c in algorithm.channels for name in (c.name, *c.aliases)}
    given: dict[str, str] = {}  # declared channel name -> the name the request used
    channels: list[ChannelConfig] = []
    seen: set[str] = set()
    for index, channel in enumerate(params.get("InputDataConfig") or [], start=1):
        name = channel["ChannelName"]
        where = f"InputDataConfig[{index}] (channel {name!r})"
        if name in seen:
            raise ValidationError(f"{where}: channel names must be unique.")
        seen.add(name)
        if name not in declared and not open_channels:
            raise ValidationError(f"{where}: algorithm {algorithm.name} does not accept a channel named {name!r}. "
                                  f"Supported channels: {', '.join(declared)}.")
        canonical = declared[name].name if name in declared else name
        if canonical in given:
            raise ValidationError(f"{where}: channels {given[canonical]!r} and {name!r} are two names for the same "
                                  f"{algorithm.name} channel; give only one of them.")
        given[canonical] = name
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise ValidationError(f"{where}: DataSource.S3DataSource is required (other sources are not supported).")
        data_type = source.get("S3DataType", "S3Prefix")
        if data_type not in ("S3Prefix", "ManifestFile", "AugmentedManifestFile"):
            raise ValidationError(f"{where}: S3DataType {data_type!r} is not supported; use S3Prefix, ManifestFile "
                                  "or AugmentedManifestFile.")
        attribute_names = tuple(source.get("AttributeNames") or ())
        if data_type == "AugmentedManifestFile" and not attribute_names:
            raise ValidationError(f"{where}: S3DataSource.AttributeNames is required when S3DataType is "
                                  "AugmentedManifestFile (the manifest attributes to feed, in order).")
        if attribute_names and data_type != "AugmentedManifestFile":
            raise ValidationError(f"{where}: S3DataSource.AttributeNames is only valid when S3DataType is "
                                  f"AugmentedManifestFile, not {data_type}.")
        content_type, content_params = split_content_type(channel.get("ContentType"))
        allowed = declared[name].content_types if name in declared else ()
        if content_type and allowed and content_type not in allowed:
            raise ValidationError(f"{where}: ContentType {channel.get('ContentType')!r} is not supported by "
                                  f"{algorithm.name}. Supported: {', '.join(allowed)}.")
        channels.append(ChannelConfig(
            name=name, uri=parse_s3_uri(source["S3Uri"], field=f"{where} S3Uri"), data_type=data_type,
            content_type=content_type, content_params=content_params,
            compression=channel.get("CompressionType") or "None", attribute_names=attribute_names,
            record_wrapper=channel.get("RecordWrapperType") or "None"))
    missing = [" or ".join((c.name, *c.aliases)) for c in algorithm.channels if c.required and c.name not in given]
    if missing:
        raise ValidationError(f"InputDataConfig: algorithm {algorithm.name} requires the channel(s) "
                              f"{', '.join(missing)}.")

    output = parse_s3_uri(params["OutputDataConfig"]["S3OutputPath"], field="OutputDataConfig.S3OutputPath")
    stopping = params.get("StoppingCondition") or {}
    max_runtime = int(stopping.get("MaxRuntimeInSeconds") or DEFAULT_MAX_RUNTIME)
    instance_count = int((params.get("ResourceConfig") or {}).get("InstanceCount") or 1)
    return TrainingJobSpec(
        name=params["TrainingJobName"], algorithm=algorithm, hyperparameters=hyperparameters,
        raw_hyperparameters=raw_hp, channels=tuple(channels), output=output, max_runtime=max_runtime,
        metric_definitions=_metric_definitions(algorithm, spec.get("MetricDefinitions") or []),
        instance_count=instance_count, spot=_spot(params, stopping, max_runtime),
        checkpoint=_checkpoint(params.get("CheckpointConfig")),
        output_kms_key_id=params["OutputDataConfig"].get("KmsKeyId") or "")


def _spot(params: dict[str, Any], stopping: dict[str, Any], max_runtime: int) -> SpotSpec | None:
    enabled = bool(params.get("EnableManagedSpotTraining", False))
    max_wait = stopping.get("MaxWaitTimeInSeconds")
    if not enabled:
        if max_wait is not None:
            raise ValidationError("Invalid StoppingCondition.MaxWaitTimeInSeconds: it may only be set when "
                                  "EnableManagedSpotTraining is true (it bounds the time a spot job waits for "
                                  "capacity and restarts).")
        return None
    if max_wait is None or int(max_wait) < max_runtime:
        raise ValidationError(f"Invalid StoppingCondition.MaxWaitTimeInSeconds: with EnableManagedSpotTraining "
                              f"it must be present and be greater than or equal to "
                              f"StoppingCondition.MaxRuntimeInSeconds ({max_runtime}), got {max_wait}.")
    return SpotSpec(max_wait=int(max_wait))


def _checkpoint(config: dict[str, Any] | None) -> CheckpointSpec | None:
    if not config:
        return None
    uri = str(config.get("S3Uri") or "")
    if not uri.startswith("s3://"):
        raise ValidationError(f"CheckpointConfig.S3Uri must be an s3:// URI (the prefix checkpoints are copied "
                              f"to), got {uri!r}.")
    local_path = str(config.get("LocalPath") or DEFAULT_CHECKPOINT_PATH).rstrip("/") or "/"
    if not (local_path + "/").startswith("/opt/ml/"):
        # The job's folder stands for /opt/ml; a path outside it would be a folder of this machine.
        raise ValidationError(f"CheckpointConfig.LocalPath must be a folder under /opt/ml (sagelab maps /opt/ml "
                              f"onto the job's folder), got {local_path!r}.")
    return CheckpointSpec(uri=parse_s3_uri(uri, field="CheckpointConfig.S3Uri"), local_path=local_path)
