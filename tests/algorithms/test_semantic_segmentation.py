"""Semantic Segmentation: images of a red disc (class 1) and a blue square (class 2) on a striped, noisy
background (class 0) are segmented by each decoder (fcn, psp, deeplab) clearly better than the all-background
baseline; the endpoint's PNG mask covers the planted disc, its protobuf probabilities agree with it; label maps,
the ignore value 255, augmented manifests; bad inputs are named; a real job -> endpoint -> batch transform
cycle through boto3; the conformance kit's checks."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError
from builtin_flow import channel, create_model, deploy, image, invoke, metrics, model_error, put, train
from conftest import unique
from helpers import job_request
from PIL import Image, ImageDraw

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.first_party.recordio import decode_record, frame_records, iter_records
from sagelab.algorithms.semantic_segmentation.algorithm import SemanticSegmentation
from sagelab.algorithms.semantic_segmentation.data import LabelMap, read_label_maps, read_samples
from sagelab.algorithms.vision.records import decode_image, encode_jpeg, encode_png
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

ALGO = SemanticSegmentation()
SS = image("semantic-segmentation")
SIZE = 48
#: Small enough for one core: a ResNet-50 eight times narrower than the standard one (_sagelab_base_width is a
#: sagelab extension), 48-pixel crops.
SMALL = {"num_classes": "3", "num_training_samples": "32", "use_pretrained_model": "False",
         "_sagelab_base_width": "8", "crop_size": str(SIZE), "base_size": str(SIZE), "epochs": "10",
         "mini_batch_size": "8", "optimizer": "adam", "learning_rate": "0.01"}


def scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask): a red disc (1) and a blue square (2) on a noisy striped background (0)."""
    noise = rng.integers(60, 140, size=(SIZE, SIZE, 3))
    stripes = (np.arange(SIZE)[None, :, None] // 3 % 2) * 40
    picture = Image.fromarray(np.clip(noise + stripes, 0, 255).astype(np.uint8))
    mask = Image.new("L", (SIZE, SIZE), 0)
    draw, label = ImageDraw.Draw(picture), ImageDraw.Draw(mask)
    r = int(rng.integers(SIZE // 6, SIZE // 4))
    cx, cy = (int(v) for v in rng.integers(r, SIZE - r, size=2))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(220, 40, 40))
    label.ellipse((cx - r, cy - r, cx + r, cy + r), fill=1)
    side = int(rng.integers(SIZE // 6, SIZE // 4))
    x, y = (int(v) for v in rng.integers(0, SIZE - side, size=2))
    draw.rectangle((x, y, x + side, y + side), fill=(40, 60, 230))
    label.rectangle((x, y, x + side, y + side), fill=2)
    return np.asarray(picture), np.asarray(mask)


def scenes(n: int, seed: int, classes: int = 3) -> list[tuple[bytes, bytes]]:
    """Encoded scenes; with 2 classes the square is part of the background (a distractor)."""
    rng = np.random.default_rng(seed)
    return [(encode_jpeg(picture), encode_png(mask if classes == 3 else (mask == 1).astype(np.uint8)))
            for picture, mask in (scene(rng) for _ in range(n))]


def channels_of(root: Path, name: str, pairs: list[tuple[bytes, bytes]]) -> dict[str, Channel]:
    folders = {name: root / name, f"{name}_annotation": root / f"{name}_annotation"}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for i, (jpeg, png) in enumerate(pairs):
        (folders[name] / f"img{i:03d}.jpg").write_bytes(jpeg)
        (folders[f"{name}_annotation"] / f"img{i:03d}.png").write_bytes(png)
    return {key: Channel(key, "image/jpeg" if key == name else "image/png", sorted(folder.iterdir()))
            for key, folder in folders.items()}


def train_direct(tmp_path: Path, hp: dict[str, str], channels: dict[str, Channel]) -> TrainingContext:
    ctx = TrainingContext(ALGO.hyperparameters.validate(hp), channels, tmp_path / "model", tmp_path / "out",
                          io.StringIO())
    ALGO.train(ctx)
    return ctx


def logged(log: str, metric: str) -> float:
    return float(re.findall(rf"host=algo-1, validation {metric} <score>=(\S+)", log)[-1])


def baseline_miou(pairs: list[tuple[bytes, bytes]], classes: int = 3) -> float:
    """mIOU of predicting background everywhere: the background's IOU over the classes present."""
    masks = np.stack([decode_image(png, where="mask", mode="L") for _, png in pairs])
    return float((masks == 0).mean()) / classes


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fcn")
    validation = scenes(16, 2)
    ctx = train_direct(root, SMALL, {**channels_of(root, "train", scenes(32, 1)),
                                     **channels_of(root, "validation", validation)})
    return ctx, validation


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("semantic-segmentation",)
    values = ALGO.hyperparameters.validate({"num_classes": "21", "num_training_samples": "1464",
                                            "use_pretrained_model": "False"})
    assert (values["algorithm"], values["backbone"], values["crop_size"], values["base_size"], values["epochs"],
            values["learning_rate"], values["lr_scheduler"], values["mini_batch_size"], values["optimizer"],
            values["momentum"], values["weight_decay"], values["early_stopping_min_epochs"],
            values["early_stopping_patience"], values["syncbn"], values["_sagelab_base_width"]) == (
        "fcn", "resnet-50", 240, 520, 10, 0.001, "poly", 16, "sgd", 0.9, 0.0001, 5, 4, False, 64)
    with pytest.raises(ValidationError, match="'use_pretrained_model'.*no pretrained weights ship with sagelab"):
        ALGO.hyperparameters.validate({"num_classes": "21", "num_training_samples": "1464"})
    for bad, fragment in (({"num_classes": "255"}, "'num_classes'"), ({"num_classes": "1"}, "'num_classes'"),
                          ({"algorithm": "unet"}, "'algorithm'"), ({"backbone": "resnet-18"}, "'backbone'"),
                          ({"crop_size": "16"}, "'crop_size'"), ({"lr_scheduler": "step"}, "'lr_scheduler_step'"),
                          ({"lr_scheduler_step": "20,10"}, "increasing"), ({"optimizer": "adadelta"}, "'optimizer'")):
        with pytest.raises(ValidationError, match=re.escape(fragment)):
            ALGO.hyperparameters.validate({"num_classes": "3", "num_training_samples": "10",
                                           "use_pretrained_model": "False", **bad})
    assert {(m.name, m.direction) for m in ALGO.metrics} >= {("validation:mIOU", "Maximize"),
                                                             ("validation:pixel_accuracy", "Maximize"),
                                                             ("train:loss", "Minimize")}


def test_the_conformance_kit_static_checks():
    kit.check_declarations(ALGO)
    kit.check_schema_rejects_bad_values(ALGO, {"num_classes": "3", "num_training_samples": "10",
                                               "use_pretrained_model": "false"})
    kit.check_metric_names(ALGO)


@pytest.mark.slow  # with its fixture
def test_fcn_segments_the_planted_shapes_and_the_predictor_answers_both_formats(fitted, tmp_path):
    ctx, validation = fitted
    log = ctx.log.getvalue()
    baseline = baseline_miou(validation)
    assert logged(log, "mIOU") >= max(0.55, baseline + 0.25), (logged(log, "mIOU"), baseline)
    assert logged(log, "pixel_accuracy") >= 0.85
    assert re.search(r"#quality_metric: host=algo-1, epoch=9, train loss <loss>=\S+", log)
    kit._assert_no_pickle(ctx.model_dir)
    predictor = ALGO.load(ctx.model_dir)
    picture, truth = scene(np.random.default_rng(77))
    body = encode_jpeg(picture)
    payload, returned = predictor.invoke(body, "image/jpeg", "image/png")
    mask = decode_image(payload, where="answer", mode="L")
    assert returned == "image/png" and mask.shape == (SIZE, SIZE) and set(np.unique(mask)) <= {0, 1, 2}
    disc = truth == 1
    assert (mask[disc] == 1).mean() >= 0.6 and ((mask == 1) & disc).sum() / ((mask == 1) | disc).sum() >= 0.5
    probabilities, returned = predictor.invoke(body, "image/jpeg", "application/x-recordio-protobuf")
    (record,) = [decode_record(p) for p in iter_records(probabilities)]
    shape = tuple(int(v) for v in record.features["shape"].values)
    values = record.features["target"].values.reshape(shape)
    assert returned == "application/x-recordio-protobuf" and shape == (1, 3, SIZE, SIZE)
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-4)
    assert (values[0].argmax(axis=0) == mask).mean() >= 0.99
    # Another size: the mask comes back at the input's size.
    wide = np.asarray(Image.fromarray(picture).resize((SIZE * 2, SIZE)))
    payload, _ = predictor.invoke(encode_jpeg(wide), "image/jpeg", "image/png")
    assert decode_image(payload, where="answer", mode="L").shape == (SIZE, SIZE * 2)
    there = kit.predict_in_fresh_process(ALGO, ctx.model_dir, [(body, "image/jpeg", "image/png")], tmp_path / "fresh")
    assert there == [(predictor.invoke(body, "image/jpeg", "image/png")[0], "image/png")]
    for body_, content_type, accept, status, fragment in (
            (body, "text/csv", "image/png", 415, "text/csv"),
            (body, "image/jpeg", "application/json", 406, "application/json"),
            (b"not an image", "image/jpeg", "image/png", 400, "does not decode"),
            (b"", "image/jpeg", "image/png", 400, "empty")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body_, content_type, accept)
        assert info.value.status == status and fragment in str(info.value), str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["psp", "deeplab"])
def test_psp_and_deeplab_learn_the_disc_too(tmp_path, decoder):
    # The pooling branches make these two slower to start from scratch than fcn: more, smaller batches.
    validation = scenes(8, 4, classes=2)
    ctx = train_direct(tmp_path, {**SMALL, "algorithm": decoder, "num_classes": "2", "num_training_samples": "24",
                                  "epochs": "12", "mini_batch_size": "4"},
                       {**channels_of(tmp_path, "train", scenes(24, 3, classes=2)),
                        **channels_of(tmp_path, "validation", validation)})
    assert logged(ctx.log.getvalue(), "mIOU") >= baseline_miou(validation, classes=2) + 0.15


def test_incremental_training_needs_the_same_architecture(fitted, tmp_path):
    ctx, validation = fitted
    model = Channel("model", "application/x-sagemaker-model", sorted(ctx.model_dir.iterdir()))
    pairs = {**channels_of(tmp_path, "train", scenes(4, 8)), **channels_of(tmp_path, "validation", validation[:2])}
    # A learning rate too small to learn anything in one epoch: the scores are the given model's.
    again = train_direct(tmp_path / "again", {**SMALL, "epochs": "1", "num_training_samples": "4", "optimizer": "sgd",
                                              "learning_rate": "0.00001"}, {**pairs, "model": model})
    assert "Starting from the weights in channel 'model' (10 epochs)" in again.log.getvalue()
    assert logged(again.log.getvalue(), "mIOU") >= baseline_miou(validation[:2]) + 0.2
    with pytest.raises(DataError, match=re.escape("Channel 'model': the model was trained with num_classes=3 but "
                                                  "this job has num_classes=4")):
        train_direct(tmp_path / "other", {**SMALL, "epochs": "1", "num_classes": "4"}, {**pairs, "model": model})


def test_training_is_seeded(tmp_path):
    pairs = scenes(6, 5)
    hp = {**SMALL, "epochs": "1", "num_training_samples": "6", "optimizer": "sgd", "lr_scheduler": "step",
          "lr_scheduler_step": "1", "early_stopping": "true"}
    first = train_direct(tmp_path / "a", hp, {**channels_of(tmp_path / "a", "train", pairs),
                                              **channels_of(tmp_path / "a", "validation", pairs[:2])})
    second = train_direct(tmp_path / "b", hp, {**channels_of(tmp_path / "b", "train", pairs),
                                               **channels_of(tmp_path / "b", "validation", pairs[:2])})
    assert (first.model_dir / "model.pt").read_bytes() == (second.model_dir / "model.pt").read_bytes()


def _mask_channel(tmp_path: Path, name: str, masks: dict[str, np.ndarray]) -> Channel:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, mask in masks.items():
        (folder / file).write_bytes(encode_png(mask))
    return Channel(name, "image/png", sorted(folder.iterdir()))


def test_label_maps_and_the_ignore_value(tmp_path):
    picture = np.zeros((4, 4, 3), dtype=np.uint8)
    encoded = np.array([[0, 3, 6, 255]] * 4, dtype=np.uint8)
    images = channels_of(tmp_path, "train", [(encode_png(picture), encode_png(encoded))])
    scaled = read_samples(images["train"], images["train_annotation"], LabelMap(scale=3), 3)
    assert scaled[0].mask[0].tolist() == [0, 1, 2, 255]
    folder = tmp_path / "label_map"
    folder.mkdir()
    (folder / "train_label_map.json").write_text(json.dumps({"map": {"0": 6, "1": 0, "2": 3}}))
    (folder / "validation_label_map.json").write_text(json.dumps({"scale": "3"}))
    maps = read_label_maps(Channel("label_map", "application/json", sorted(folder.iterdir())))
    assert maps["validation"].scale == 3
    mapped = read_samples(images["train"], images["train_annotation"], maps["train"], 3)
    assert mapped[0].mask[0].tolist() == [1, 2, 0, 255]
    unmapped = np.array([[0, 3, 6, 9]] * 4, dtype=np.uint8)
    images = channels_of(tmp_path / "u", "train", [(encode_png(picture), encode_png(unmapped))])
    with pytest.raises(DataError, match=re.escape("file img000.png: pixel (0, 3) has value 9, which file "
                                                  "train_label_map.json does not map to a class")):
        read_samples(images["train"], images["train_annotation"], maps["train"], 3)
    (folder / "train_label_map.json").write_text('{"scale": "zero"}')
    with pytest.raises(DataError, match=re.escape("file train_label_map.json: \"scale\" must be a positive number")):
        read_label_maps(Channel("label_map", "application/json", sorted(folder.iterdir())))


def test_bad_images_and_masks_are_named(tmp_path):
    pairs = scenes(2, 6)
    good = channels_of(tmp_path / "good", "train", pairs)
    missing = _mask_channel(tmp_path / "missing", "train_annotation",
                            {"img000.png": decode_image(pairs[0][1], where="m", mode="L")})
    with pytest.raises(DataError, match=re.escape("Channel 'train', file img001.jpg: no mask for this image in "
                                                  "channel 'train_annotation' (expected img001.png there)")):
        read_samples(good["train"], missing, LabelMap(), 3)
    broken = tmp_path / "broken" / "train"
    broken.mkdir(parents=True)
    (broken / "img000.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match=re.escape("Channel 'train', file img000.jpg: the image does not decode")):
        read_samples(Channel("train", "image/jpeg", [broken / "img000.jpg"]), good["train_annotation"], LabelMap(), 3)
    seven = np.zeros((SIZE, SIZE), dtype=np.uint8)
    seven[5, 9] = 7
    bad = _mask_channel(tmp_path / "seven", "train_annotation", {"img000.png": seven, "img001.png": seven})
    with pytest.raises(DataError, match=re.escape("Channel 'train_annotation', file img000.png: pixel (5, 9) is "
                                                  "class 7 (mask value 7); class ids are 0..2 (num_classes=3)")):
        read_samples(good["train"], bad, LabelMap(), 3)
    small = _mask_channel(tmp_path / "small", "train_annotation",
                          {"img000.png": np.zeros((8, 8), dtype=np.uint8), "img001.png": seven})
    with pytest.raises(DataError, match=re.escape("the mask is 8x8 pixels but its image is 48x48")):
        read_samples(good["train"], small, LabelMap(), 3)
    with pytest.raises(DataError, match=re.escape("Channel 'train_annotation' is required")):
        read_samples(good["train"], None, LabelMap(), 3)


def test_augmented_manifest_stream(tmp_path):
    pairs = scenes(3, 7)
    stream = tmp_path / "manifest"
    stream.write_bytes(frame_records(item for pair in pairs for item in pair))
    samples = read_samples(Channel("train", "application/x-recordio", [stream]), None, LabelMap(), 3)
    assert len(samples) == 3 and samples[2].mask.tolist() == decode_image(pairs[2][1], where="m", mode="L").tolist()
    stream.write_bytes(frame_records([pairs[0][0], pairs[0][1], pairs[1][0]]))
    with pytest.raises(DataError, match="holds 3 records; expected pairs of image and mask"):
        read_samples(Channel("train", "application/x-recordio", [stream]), None, LabelMap(), 3)


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def _upload(s3, bucket: str, prefix: str, pairs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    for i, (jpeg, png) in enumerate(pairs):
        put(s3, bucket, f"{prefix}/images/img{i:03d}.jpg", jpeg)
        put(s3, bucket, f"{prefix}/masks/img{i:03d}.png", png)
    return {"images": f"s3://{bucket}/{prefix}/images/", "masks": f"s3://{bucket}/{prefix}/masks/"}


@pytest.mark.slow
def test_job_endpoint_batch_transform_and_failures(sm, s3, rt, bucket):
    train_pairs, validation_pairs = scenes(24, 11, classes=2), scenes(8, 12, classes=2)
    training = _upload(s3, bucket, "ss/train", train_pairs)
    validation = _upload(s3, bucket, "ss/validation", validation_pairs)
    # The training images come as an augmented manifest (what Ground Truth writes), the validation ones as folders.
    manifest = "".join(json.dumps({"source-ref": f"{training['images']}img{i:03d}.jpg",
                                   "shapes-ref": f"{training['masks']}img{i:03d}.png",
                                   "shapes-metadata": {"job-name": "label-shapes"}}) + "\n"
                       for i in range(len(train_pairs)))
    augmented = channel("train", put(s3, bucket, "ss/train.manifest", manifest), "application/x-recordio",
                        data_type="AugmentedManifestFile")
    augmented["DataSource"]["S3DataSource"]["AttributeNames"] = ["source-ref", "shapes-ref"]
    augmented["RecordWrapperType"] = "RecordIO"
    hp = {**SMALL, "num_classes": "2", "num_training_samples": "24", "epochs": "8", "mini_batch_size": "4"}
    desc = train(sm, bucket, SS, hp, [augmented, channel("validation", validation["images"], "image/jpeg"),
                                      channel("validation_annotation", validation["masks"], "image/png")])
    found = metrics(desc)
    assert found["validation:mIOU"] >= baseline_miou(validation_pairs, classes=2) + 0.15 and "validation:pixel_accuracy" in found

    endpoint = deploy(sm, SS, desc)
    picture, truth = scene(np.random.default_rng(78))
    payload, returned = invoke(rt, endpoint, encode_jpeg(picture), "image/jpeg", "image/png")
    mask = decode_image(payload, where="answer", mode="L")
    assert returned == "image/png" and mask.shape == truth.shape and (mask[truth == 1] == 1).mean() >= 0.5
    payload, returned = invoke(rt, endpoint, encode_jpeg(picture), "image/jpeg", "application/x-recordio-protobuf")
    (record,) = [decode_record(p) for p in iter_records(payload)]
    assert [int(v) for v in record.features["shape"].values] == [1, 2, SIZE, SIZE]
    assert model_error(rt, endpoint, b"nope", "image/jpeg", "image/png")[0] == 400
    assert model_error(rt, endpoint, encode_jpeg(picture), "application/json", "image/png")[0] == 415
    sm.delete_endpoint(EndpointName=endpoint)

    # Incremental training from the job's model.tar.gz.
    again = train(sm, bucket, SS, {**hp, "epochs": "1", "optimizer": "sgd", "learning_rate": "0.00001"},
                  [augmented, channel("validation", validation["images"], "image/jpeg"),
                   channel("validation_annotation", validation["masks"], "image/png"),
                   channel("model", desc["ModelArtifacts"]["S3ModelArtifacts"], "application/x-sagemaker-model")])
    assert metrics(again)["validation:mIOU"] >= baseline_miou(validation_pairs, classes=2) + 0.15

    model, name = create_model(sm, SS, desc), unique("transform")
    sm.create_transform_job(
        TransformJobName=name, ModelName=model,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": validation["images"]}},
                        "ContentType": "image/jpeg", "SplitType": "None"},
        TransformOutput={"S3OutputPath": f"s3://{bucket}/ss/masks-out/", "Accept": "image/png", "AssembleWith": "None"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName=name,
                                                            WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    assert sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] == "Completed"
    for i, (_, png) in enumerate(validation_pairs):
        out = s3.get_object(Bucket=bucket, Key=f"ss/masks-out/img{i:03d}.jpg.out")["Body"].read()
        predicted, expected = decode_image(out, where="out", mode="L"), decode_image(png, where="m", mode="L")
        assert predicted.shape == expected.shape

    # Failures: a missing mask fails the job naming the file; the pretrained default and a wrong content type are
    # refused when the job is created.
    put(s3, bucket, "ss/lonely/images/extra.jpg", train_pairs[0][0])
    put(s3, bucket, "ss/lonely/masks/other.png", train_pairs[0][1])
    lonely = [channel("train", f"s3://{bucket}/ss/lonely/images/", "image/jpeg"),
              channel("train_annotation", f"s3://{bucket}/ss/lonely/masks/", "image/png"),
              channel("validation", validation["images"], "image/jpeg"),
              channel("validation_annotation", validation["masks"], "image/png")]
    failed = train(sm, bucket, SS, hp, lonely, expect="Failed")
    assert "Channel 'train', file extra.jpg: no mask for this image" in failed["FailureReason"]
    for hyperparameters, channels, fragment in (
            ({k: v for k, v in hp.items() if k != "use_pretrained_model"}, lonely, "use_pretrained_model"),
            (hp, [{**lonely[0], "ContentType": "text/csv"}, *lonely[1:]], "ContentType 'text/csv'")):
        with pytest.raises(ClientError) as info:
            sm.create_training_job(**job_request(unique("job"), SS, bucket, hyperparameters, channels=channels))
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert fragment in info.value.response["Error"]["Message"]
