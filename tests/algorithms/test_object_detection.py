"""Object Detection (SSD): images with one or two planted shapes (a red square is class 0, a blue disc class 1)
at random places and sizes are found again, far above a random-box baseline, from RecordIO records, from images
with annotation JSON and from an augmented manifest; bad inputs are named; a real job -> endpoint -> batch
transform cycle through boto3; the conformance kit's static checks.

The published networks at 300 x 300 take hours on a CPU, so these tests use the sagelab-only
`_sagelab_base_width` (narrow layers) and `_sagelab_small_images` (32 x 32 images) hyperparameters."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from builtin_flow import (
    channel,
    create_model,
    deploy,
    image,
    invoke,
    metrics,
    model_error,
    put,
    train,
    transform,
)
from PIL import Image, ImageDraw

from sagelab.algorithms import torch_artifact
from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.first_party.recordio import frame_records
from sagelab.algorithms.object_detection import annotations
from sagelab.algorithms.object_detection.algorithm import ObjectDetection
from sagelab.algorithms.object_detection.evaluation import box_iou, mean_average_precision
from sagelab.algorithms.vision.records import write_recordio
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

ALGO = ObjectDetection()
OD = image("object-detection")
SIZE = 32
COLOURS = ((230, 40, 40), (40, 90, 230))
SMALL = {"num_classes": "2", "num_training_samples": "200", "use_pretrained_model": "0", "image_shape": str(SIZE),
         "_sagelab_small_images": "true", "_sagelab_base_width": "8", "epochs": "10", "optimizer": "adam",
         "learning_rate": "0.002", "lr_scheduler_step": "6,8", "mini_batch_size": "16"}
REQUIRED = {"num_classes": "2", "num_training_samples": "10"}


def scene(rng: np.random.Generator, objects: int = 1, size: int = SIZE, fmt: str = "PNG") -> tuple[bytes, np.ndarray]:
    """An encoded image of `objects` shapes on a dark background, and their (class_id, xmin, ymin, xmax, ymax)
    rows, normalised."""
    picture = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 90, 3)))
    draw = ImageDraw.Draw(picture)
    rows = []
    for _ in range(objects):
        c = int(rng.integers(2))
        w, h = rng.uniform(0.3, 0.6, 2) * size
        x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        (draw.rectangle if c == 0 else draw.ellipse)([x0, y0, x0 + w, y0 + h], fill=COLOURS[c])
        rows.append([c, x0 / size, y0 / size, (x0 + w) / size, (y0 + h) / size])
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue(), np.array(rows, dtype=np.float32)


def scenes(n: int, seed: int, objects: int = 1) -> list[tuple[bytes, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [scene(rng, objects) for _ in range(n)]


def rec(items: list[tuple[bytes, np.ndarray]]) -> bytes:
    return write_recordio(([2, 5, *boxes.ravel().tolist()], data) for data, boxes in items)


def annotation(name: str, boxes: np.ndarray, size: int = SIZE) -> bytes:
    return json.dumps({"file": name, "image_size": [{"width": size, "height": size, "depth": 3}],
                       "annotations": [{"class_id": int(c), "left": x0 * size, "top": y0 * size,
                                        "width": (x1 - x0) * size, "height": (y1 - y0) * size}
                                       for c, x0, y0, x1, y1 in boxes.tolist()],
                       "categories": [{"class_id": 0, "name": "square"}, {"class_id": 1, "name": "disc"}]}).encode()


def image_channels(items: list[tuple[bytes, np.ndarray]], name: str) -> dict[str, dict[str, bytes]]:
    files = {f"img{i}.png": data for i, (data, _) in enumerate(items)}
    notes = {f"img{i}.json": annotation(f"img{i}.png", boxes) for i, (_, boxes) in enumerate(items)}
    return {name: files, f"{name}_annotation": notes}


def channels_of(tmp_path, files: dict[str, dict[str, bytes]], types: dict[str, str]) -> dict[str, Channel]:
    made = {}
    for name, contents in files.items():
        paths = []
        for file, body in contents.items():
            path = tmp_path / "data" / name / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            paths.append(path)
        made[name] = Channel(name, types.get(name, "application/json"), paths, keys=list(contents))
    return made


def train_direct(tmp_path, hp: dict[str, str], files: dict[str, dict[str, bytes]],
                 types: dict[str, str] | None = None) -> TrainingContext:
    types = types or {"train": "application/x-recordio", "validation": "application/x-recordio"}
    ctx = TrainingContext(ALGO.hyperparameters.validate(hp), channels_of(tmp_path, files, types),
                          tmp_path / "model", tmp_path / "out", io.StringIO())
    ALGO.train(ctx)
    return ctx


def logged_map(log: str) -> float:
    return float(re.findall(r"host=algo-1, validation mAP <score>=(\S+)", log)[-1])


def random_baseline(truths: list[np.ndarray], seed: int = 0) -> float:
    """The mAP of guessing: one box of a random class at a random place per image (the average of 20 draws)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(20):
        guesses = []
        for _ in truths:
            x, y = np.sort(rng.uniform(0, 1, 2)), np.sort(rng.uniform(0, 1, 2))
            guesses.append([[float(rng.integers(2)), float(rng.uniform()), x[0], y[0], x[1], y[1]]])
        values.append(mean_average_precision(guesses, truths, 2))
    return float(np.mean(values))


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("object-detection",)
    assert [m.name for m in ALGO.metrics] == ["validation:mAP"] and ALGO.metrics[0].direction == "Maximize"
    values = ALGO.hyperparameters.validate({**REQUIRED, "use_pretrained_model": "0"})
    assert (values["base_network"], values["image_shape"], values["epochs"], values["learning_rate"],
            values["mini_batch_size"], values["optimizer"], values["momentum"], values["weight_decay"],
            values["nms_threshold"], values["overlap_threshold"], values["label_width"],
            values["lr_scheduler_step"], values["early_stopping"], values["_sagelab_base_width"]) == (
        "vgg-16", 300, 30, 0.001, 32, "sgd", 0.9, 0.0005, 0.45, 0.5, 350, [], False, 64)
    with pytest.raises(ValidationError, match="'use_pretrained_model'.*no pretrained weights ship with sagelab"):
        ALGO.hyperparameters.validate(REQUIRED)
    for bad, fragment in (({"image_shape": "64"}, "'image_shape'"), ({"base_network": "resnet-18"}, "'base_network'"),
                          ({"lr_scheduler_step": "10,x"}, "'lr_scheduler_step'"),
                          ({"freeze_layer_pattern": "(conv1"}, "'freeze_layer_pattern'"),
                          ({"_sagelab_base_width": "65"}, "'_sagelab_base_width'"),
                          ({"_sagelab_small_images": "true", "image_shape": "16"}, "'image_shape'"),
                          ({"optimizer": "nag"}, "'optimizer'")):
        with pytest.raises(ValidationError, match=re.escape(fragment)):
            ALGO.hyperparameters.validate({**REQUIRED, "use_pretrained_model": "0", **bad})
    assert ALGO.hyperparameters.validate({**REQUIRED, "use_pretrained_model": "0", "image_shape": "64",
                                          "_sagelab_small_images": "true"})["image_shape"] == 64


def test_conformance_kit_static_checks():
    kit.check_declarations(ALGO)
    kit.check_schema_rejects_bad_values(ALGO, {**REQUIRED, "use_pretrained_model": "0"})
    kit.check_metric_names(ALGO)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One detector trained on 150 RecordIO images (one shape each), validated on 50."""
    tmp_path = tmp_path_factory.mktemp("od")
    validation = scenes(50, 2)
    ctx = train_direct(tmp_path, SMALL, {"train": {"train.rec": rec(scenes(150, 1))},
                                         "validation": {"validation.rec": rec(validation)}})
    return ctx, validation


@pytest.mark.slow
def test_finds_the_planted_shapes_far_above_chance(trained, tmp_path):
    ctx, validation = trained
    log = ctx.log.getvalue()
    baseline = random_baseline([boxes for _, boxes in validation])
    assert baseline < 0.1
    assert logged_map(log) >= 0.7
    assert "epoch=9, train smooth_l1" in log and "epoch=9, validation mAP" in log
    predictor = ALGO.load(ctx.model_dir)
    overlaps, right_class = [], []
    for data, boxes in scenes(20, 3):
        payload, returned = predictor.invoke(data, "image/png", "application/json")
        top = json.loads(payload)["prediction"][0]
        assert returned == "application/json" and len(top) == 6 and 0 <= top[1] <= 1
        overlaps.append(float(box_iou(np.array(top[2:]), boxes[:, 1:])[0]))
        right_class.append(top[0] == boxes[0, 0])
    assert np.median(overlaps) >= 0.6 and np.mean(right_class) >= 0.8, (overlaps, right_class)
    kit._assert_no_pickle(ctx.model_dir)
    body = scenes(1, 4)[0][0]
    requests = [(body, "image/png", accept) for accept in predictor.accept_types]
    here = [predictor.invoke(*request) for request in requests]
    assert kit.predict_in_fresh_process(ALGO, ctx.model_dir, requests, tmp_path / "fresh") == here


def test_annotation_accept_answers_in_pixels_of_the_image(trained):
    ctx, _ = trained
    predictor = ALGO.load(ctx.model_dir)
    rng = np.random.default_rng(6)
    data, boxes = scene(rng, size=96, fmt="JPEG")  # drawn at 96 x 96: resized to 32 x 32 for the network
    payload, returned = predictor.invoke(data, "image/jpeg", "application/json;annotation=1")
    document = json.loads(payload)
    assert returned == "application/json" and document["image_size"] == [{"width": 96, "height": 96, "depth": 3}]
    top = document["annotations"][0]
    assert set(top) == {"class_id", "score", "left", "top", "width", "height"} and top["class_id"] == boxes[0, 0]
    found = np.array([top["left"], top["top"], top["left"] + top["width"], top["top"] + top["height"]]) / 96
    assert box_iou(found, boxes[:, 1:])[0] >= 0.5
    lines, kind = predictor.invoke(data, "image/jpeg", "application/jsonlines")
    assert kind == "application/jsonlines" and lines.endswith(b"\n") and "prediction" in json.loads(lines)
    for body, content_type, accept, status, fragment in (
            (b"not an image", "image/png", "application/json", 400, "does not decode"),
            (data, "text/csv", "application/json", 415, "text/csv"),
            (data, "image/jpeg", "text/csv", 406, "text/csv"),
            (b"", "image/png", "application/json", 400, "empty")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body, content_type, accept)
        assert info.value.status == status and fragment in str(info.value), str(info.value)


@pytest.mark.slow
def test_two_objects_per_image_from_images_and_annotation_json(tmp_path):
    files = {**image_channels(scenes(120, 7, objects=2), "train"),
             **image_channels(scenes(30, 8, objects=2), "validation")}
    types = {"train": "image/png", "validation": "image/png"}
    ctx = train_direct(tmp_path, SMALL, files, types)
    truths = [boxes for _, boxes in scenes(30, 8, objects=2)]
    assert logged_map(ctx.log.getvalue()) >= 0.4 > 4 * random_baseline(truths)


def test_augmented_manifest_reads_as_the_records_do(tmp_path):
    items = scenes(6, 9, objects=2)
    stream = []
    for data, boxes in items:
        label = json.loads(annotation("", boxes))
        stream += [data, json.dumps({"annotations": label["annotations"], "image_size": label["image_size"]}).encode()]
    made = channels_of(tmp_path, {"train": {"manifest": frame_records(stream)}, "validation": {"v.rec": rec(items)}},
                       {"train": "application/x-recordio", "validation": "application/x-recordio"})
    read = {name: annotations.read_channel(made, name, size=SIZE, num_classes=2, label_width=350)
            for name in ("train", "validation")}
    assert len(read["train"]) == 6
    for a, b in zip(read["train"].boxes, read["validation"].boxes, strict=True):
        assert np.allclose(a, b, atol=1e-5)
    assert np.array_equal(read["train"].images, read["validation"].images)


def test_same_data_same_model_and_frozen_layers_stay_put(tmp_path):
    import torch

    from sagelab.algorithms.object_detection import network as net

    files = {"train": {"t.rec": rec(scenes(24, 10))}, "validation": {"v.rec": rec(scenes(8, 11))}}
    hp = {**SMALL, "epochs": "1", "_sagelab_base_width": "4", "optimizer": "sgd", "freeze_layer_pattern": "^(conv1_|conv2_).*"}
    one = train_direct(tmp_path / "one", hp, files)
    two = train_direct(tmp_path / "two", hp, files)
    assert "froze" in one.log.getvalue()
    a = torch.load(one.model_dir / torch_artifact.MODEL_PT, weights_only=True)
    b = torch.load(two.model_dir / torch_artifact.MODEL_PT, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(0)
    fresh = net.SSD(json.loads((one.model_dir / torch_artifact.MODEL_JSON).read_text())).state_dict()
    assert torch.equal(a["base.conv1_1.0.weight"], fresh["base.conv1_1.0.weight"])
    assert not torch.equal(a["base.conv3_1.0.weight"], fresh["base.conv3_1.0.weight"])


def test_early_stopping_ends_training_when_map_stops_improving(tmp_path):
    files = {"train": {"t.rec": rec(scenes(16, 10))}, "validation": {"v.rec": rec(scenes(8, 11))}}
    hp = {**SMALL, "epochs": "8", "_sagelab_base_width": "4", "learning_rate": "1e-6", "early_stopping": "true",
          "early_stopping_min_epochs": "2", "early_stopping_patience": "1", "early_stopping_tolerance": "0.5"}
    log = train_direct(tmp_path, hp, files).log.getvalue()
    assert "Early stopping after epoch 1" in log and "epoch=2," not in log


def test_resnet_50_base_network_trains_and_detects(tmp_path):
    files = {"train": {"t.rec": rec(scenes(16, 12))}, "validation": {"v.rec": rec(scenes(4, 13))}}
    ctx = train_direct(tmp_path, {**SMALL, "base_network": "resnet-50", "_sagelab_base_width": "4", "epochs": "1",
                                  "image_shape": "64"}, files)
    assert np.isfinite(logged_map(ctx.log.getvalue()))
    payload, _ = ALGO.load(ctx.model_dir).invoke(scenes(1, 14)[0][0], "image/png", "application/json")
    rows = json.loads(payload)["prediction"]
    assert all(len(r) == 6 and r[0] in (0.0, 1.0) and 0 <= min(r[2:]) <= max(r[2:]) <= 1 for r in rows)


def _bad_rec(kind: str) -> bytes:
    data, boxes = scenes(1, 15)[0]
    if kind == "undecodable":
        return write_recordio([([2, 5, *boxes.ravel().tolist()], data), ([2, 5, *boxes.ravel().tolist()], b"junk")])
    if kind == "class":
        return write_recordio([([2, 5, 2, *boxes[0, 1:].tolist()], data)])
    if kind == "width":
        return write_recordio([([2, 5, *boxes.ravel().tolist(), 0.5], data)])
    return write_recordio([([2, 5, 0, 0.5, 0.5, 1.5, 0.9], data)])


@pytest.mark.parametrize("kind, fragment", [
    ("undecodable", "Channel 'train', file t.rec, record 2: the image does not decode"),
    ("class", "record 1, object 1: class_id is 2; with num_classes 2 it must be an integer 0..1"),
    ("width", "6 label values after the header are not whole objects of 5 values"),
    ("corners", "must be normalised to [0, 1]"),
])
def test_bad_records_fail_naming_the_record_and_field(tmp_path, kind, fragment):
    files = {"train": {"t.rec": _bad_rec(kind)}, "validation": {"v.rec": rec(scenes(2, 16))}}
    with pytest.raises(DataError, match=re.escape(fragment)):
        train_direct(tmp_path, {**SMALL, "epochs": "1"}, files)


def test_records_padded_with_minus_one_read_as_unpadded(tmp_path):
    items = scenes(3, 20, objects=2)
    padded = write_recordio(([2, 5, *boxes.ravel().tolist(), *[-1.0] * 13], data) for data, boxes in items)
    made = channels_of(tmp_path, {"train": {"p.rec": padded}, "validation": {"v.rec": rec(items)}},
                       {"train": "application/x-recordio", "validation": "application/x-recordio"})
    read = [annotations.read_channel(made, name, size=SIZE, num_classes=2, label_width=350)
            for name in ("train", "validation")]
    assert all(np.array_equal(a, b) for a, b in zip(read[0].boxes, read[1].boxes, strict=True))


def test_label_width_refuses_longer_labels(tmp_path):
    files = {"train": {"t.rec": rec(scenes(2, 17, objects=2))}, "validation": {"v.rec": rec(scenes(2, 16))}}
    with pytest.raises(DataError, match=r"record 1: the label holds 12 values, more than label_width 7"):
        train_direct(tmp_path, {**SMALL, "epochs": "1", "label_width": "7"}, files)


@pytest.mark.parametrize("change, fragment", [
    (lambda f: f["train_annotation"].update({"img0.json": b'{"file": "img0.png", "annotations": ['}),
     "Channel 'train_annotation', file img0.json: not valid JSON"),
    (lambda f: f["train_annotation"].update({"img0.json": annotation("missing.png", np.zeros((1, 5)) + 0.5)}),
     "img0.json: \"file\" names 'missing.png', which channel 'train' does not hold"),
    (lambda f: f["train"].update({"img1.png": b"\x89PNG but not really"}),
     "Channel 'train', file img1.png: the image does not decode"),
    (lambda f: f["train_annotation"].update({"img0.json": annotation("img0.png", np.array([[3, 0.1, 0.1, 0.5, 0.5]]))}),
     "class_id is 3; with num_classes 2"),
    (lambda f: f["train_annotation"].update({"img0.json": json.dumps(
        {"file": "img0.png", "image_size": [{"width": 32, "height": 32}],
         "annotations": [{"class_id": 0, "left": "ten", "top": 1, "width": 5, "height": 5}]}).encode()}),
     'annotation 1: "left" must be a number, got "ten"'),
    (lambda f: f.pop("train_annotation"), "which need a 'train_annotation' channel"),
])
def test_bad_annotations_fail_naming_the_file_and_field(tmp_path, change, fragment):
    files = {**image_channels(scenes(3, 18), "train"), **image_channels(scenes(2, 19), "validation")}
    change(files)
    with pytest.raises(DataError, match=re.escape(fragment)):
        train_direct(tmp_path, {**SMALL, "epochs": "1"}, files, {"train": "image/png", "validation": "image/png"})


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


@pytest.mark.slow
def test_job_endpoint_batch_transform_and_a_failing_job(sm, s3, rt, bucket):
    def upload(prefix: str, items: list[tuple[bytes, np.ndarray]], name: str) -> list[dict]:
        for folder, contents in image_channels(items, name).items():
            for file, body in contents.items():
                put(s3, bucket, f"{prefix}/{folder}/{file}", body)
        return [channel(name, f"s3://{bucket}/{prefix}/{name}/", "image/png"),
                channel(f"{name}_annotation", f"s3://{bucket}/{prefix}/{name}_annotation/", "application/json")]

    channels = upload("od", scenes(150, 21), "train") + upload("od", scenes(30, 22), "validation")
    desc = train(sm, bucket, OD, SMALL, channels)
    assert metrics(desc)["validation:mAP"] >= 0.6
    endpoint = deploy(sm, OD, desc)
    data, boxes = scenes(1, 23)[0]
    payload, returned = invoke(rt, endpoint, data, "image/png")
    top = json.loads(payload)["prediction"][0]
    assert returned == "application/json" and top[0] == boxes[0, 0] and box_iou(np.array(top[2:]), boxes[:, 1:])[0] >= 0.5
    payload, _ = invoke(rt, endpoint, data, "image/png", "application/json;annotation=1")
    assert json.loads(payload)["image_size"] == [{"width": SIZE, "height": SIZE, "depth": 3}]
    status, message = model_error(rt, endpoint, b"\x89PNG...", "image/png")
    assert status == 400 and "does not decode" in message
    assert model_error(rt, endpoint, data, "text/csv")[0] == 415
    sm.delete_endpoint(EndpointName=endpoint)

    batch = scenes(3, 24)
    for i, (body, _) in enumerate(batch):
        put(s3, bucket, f"od/batch/in/img{i}.png", body)
    done = transform(sm, create_model(sm, OD, desc), f"s3://{bucket}/od/batch/in/", f"s3://{bucket}/od/batch/out/",
                     content_type="image/png", split="None", accept="application/json")
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    for i, (_, boxes) in enumerate(batch):
        result = json.loads(s3.get_object(Bucket=bucket, Key=f"od/batch/out/img{i}.png.out")["Body"].read())
        assert box_iou(np.array(result["prediction"][0][2:]), boxes[:, 1:])[0] >= 0.3

    # An augmented manifest: Ground Truth's bounding-box attribute beside each image's source-ref.
    lines = []
    for i, (body, boxes_) in enumerate(scenes(16, 25)):
        source = put(s3, bucket, f"od/manifest/img{i}.png", body)
        label = json.loads(annotation("", boxes_))
        lines.append(json.dumps({"source-ref": source, "boxes": {"annotations": label["annotations"],
                                                                  "image_size": label["image_size"]},
                                 "boxes-metadata": {"type": "groundtruth/object-detection"}}))
    augmented = channel("train", put(s3, bucket, "od/train.manifest", "\n".join(lines) + "\n"),
                        "application/x-recordio", data_type="AugmentedManifestFile")
    augmented["DataSource"]["S3DataSource"]["AttributeNames"] = ["source-ref", "boxes"]
    augmented["RecordWrapperType"] = "RecordIO"
    assert "validation:mAP" in metrics(train(sm, bucket, OD, {**SMALL, "epochs": "1"}, [augmented, *channels[2:]]))

    put(s3, bucket, "od-bad/train_annotation/img0.json", annotation("nowhere.png", boxes))
    put(s3, bucket, "od-bad/train/img0.png", data)
    failed = train(sm, bucket, OD, {**SMALL, "epochs": "1"},
                   [channel("train", f"s3://{bucket}/od-bad/train/", "image/png"),
                    channel("train_annotation", f"s3://{bucket}/od-bad/train_annotation/", "application/json"),
                    *channels[2:]], expect="Failed")
    assert "\"file\" names 'nowhere.png', which channel 'train' does not hold" in failed["FailureReason"]


def test_use_pretrained_model_default_is_refused_at_create_training_job(sm, bucket):
    from helpers import job_request

    request = job_request("od-pretrained", OD, bucket, REQUIRED,
                          channels=[channel("train", f"s3://{bucket}/od/train/", "image/png"),
                                    channel("validation", f"s3://{bucket}/od/validation/", "image/png")])
    with pytest.raises(sm.exceptions.ClientError) as info:
        sm.create_training_job(**request)
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException" and "use_pretrained_model" in error["Message"]
