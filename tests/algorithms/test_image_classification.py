"""Image classification: small images of planted shapes (circle, square, triangle drawn with Pillow at random
places, sizes and colours) are told apart well above chance from RecordIO `.rec` files, from images listed by
`.lst` files and from an augmented manifest; multi-label learns planted colour/shape/background labels; the
model serves one image per request; bad images, lines and labels are named; a real job -> endpoint -> batch
transform cycle through boto3."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from builtin_flow import create_model, deploy, image, invoke, metrics, model_error, put, train, transform
from PIL import Image, ImageDraw

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.image_classification.algorithm import ImageClassification
from sagelab.algorithms.image_classification.inputs import Geometry
from sagelab.algorithms.vision.records import write_recordio
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit
from sagelab.training.metrics import extract_metrics

ALGO = ImageClassification()
IC = image("image-classification")
SIZE = 16
HP = {"num_classes": "3", "num_training_samples": "240", "num_layers": "20", "image_shape": f"3,{SIZE},{SIZE}",
      "epochs": "3", "mini_batch_size": "32", "learning_rate": "0.05"}
RECORDIO, X_IMAGE = "application/x-recordio", "application/x-image"


def draw(rng: np.random.Generator, shape: int, *, colour: tuple[int, int, int] | None = None,
         background: tuple[int, int, int] | None = None, size: int = SIZE) -> Image.Image:
    """A circle (0), square (1) or triangle (2) of random size, place and bright colour on a dark background."""
    picture = Image.new("RGB", (size, size), background or tuple(int(v) for v in rng.integers(0, 90, 3)))
    pen = ImageDraw.Draw(picture)
    side = int(rng.integers(size // 3, size * 2 // 3))
    x, y = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
    fill = colour or tuple(int(v) for v in rng.integers(150, 256, 3))
    if shape == 0:
        pen.ellipse([x, y, x + side, y + side], fill=fill)
    elif shape == 1:
        pen.rectangle([x, y, x + side, y + side], fill=fill)
    else:
        pen.polygon([(x, y + side), (x + side, y + side), (x + side / 2, y)], fill=fill)
    return picture


def encoded(picture: Image.Image, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=kind, **({"quality": 95} if kind == "JPEG" else {}))
    return buffer.getvalue()


def shapes(n: int, seed: int) -> list[tuple[int, bytes]]:
    rng = np.random.default_rng(seed)
    return [(int(c), encoded(draw(rng, int(c)))) for c in rng.integers(0, 3, n)]


def multi_label_shapes(n: int, seed: int) -> list[tuple[list[int], bytes]]:
    """Labels [the shape is red, it is a square, the background is light], drawn independently."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        red, square, light = (int(v) for v in rng.integers(0, 2, 3))
        colour = (230, 30, 30) if red else (30, 30, 230)
        background = (200, 200, 200) if light else (20, 20, 20)
        out.append(([red, square, light], encoded(draw(rng, 1 if square else int(rng.choice([0, 2])),
                                                       colour=colour, background=background))))
    return out


def channel_files(tmp_path: Path, name: str, files: dict[str, bytes], content_type: str) -> Channel:
    paths, keys = [], []
    for key, body in files.items():
        path = tmp_path / "channels" / name / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        paths.append(path)
        keys.append(key)
    return Channel(name, content_type, paths, keys=keys)


def lst_channels(tmp_path: Path, name: str, items: list, folder: str = "shapes") -> dict[str, Channel]:
    """Images under `folder/` of the image channel, and a .lst file naming them in the `<name>_lst` channel."""
    files, lines = {}, []
    for index, (labels, body) in enumerate(items):
        key = f"{folder}/img-{index:04d}.png"
        files[key] = body
        lines.append("\t".join([str(index), *(str(v) for v in np.atleast_1d(labels)), key]))
    return {name: channel_files(tmp_path, name, files, X_IMAGE),
            f"{name}_lst": channel_files(tmp_path, f"{name}_lst", {f"{name}.lst": "\n".join(lines).encode()},
                                         "text/plain")}


def fit(tmp_path: Path, hp: dict[str, str], channels: dict[str, Channel]) -> TrainingContext:
    ctx = TrainingContext(ALGO.hyperparameters.validate(hp), channels, tmp_path / "model", tmp_path / "out",
                          io.StringIO())
    ALGO.train(ctx)
    return ctx


def rec_channel(tmp_path: Path, name: str, items: list) -> Channel:
    return channel_files(tmp_path, name, {f"{name}.rec": write_recordio(items)}, RECORDIO)


def classify(predictor, items: list, kind: str = "PNG") -> np.ndarray:
    out = []
    for _, body in items:
        if kind == "JPEG":
            body = encoded(Image.open(io.BytesIO(body)).convert("RGB"), "JPEG")
        payload, returned = predictor.invoke(body, f"image/{kind.lower()}", "application/json")
        assert returned == "application/json"
        out.append(json.loads(payload))
    return np.array(out)


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("image-classification",)
    values = ALGO.hyperparameters.validate({"num_classes": "2", "num_training_samples": "10"})
    assert (values["num_layers"], values["image_shape"], values["epochs"], values["learning_rate"],
            values["mini_batch_size"], values["optimizer"], values["momentum"], values["weight_decay"],
            values["early_stopping"], values["early_stopping_min_epochs"], values["early_stopping_patience"],
            values["precision_dtype"], values["use_pretrained_model"], values["multi_label"]) == (
        152, "3,224,224", 30, 0.1, 32, "sgd", 0.9, 0.0001, False, 10, 5, "float32", 0, 0)
    base = {"num_classes": "2", "num_training_samples": "10"}
    for bad, fragment in (({"use_pretrained_model": "1"}, "no pretrained weights ship with sagelab"),
                          ({"image_shape": "3,224"}, "'image_shape'"),
                          ({"image_shape": "1,28,28"}, "num_channels must be 3"),
                          ({"lr_scheduler_step": "10,x"}, "'lr_scheduler_step'"),
                          ({"num_layers": "19"}, "'num_layers'"),
                          ({"epochs": "5", "checkpoint_frequency": "6"}, "no greater than epochs (5)"),
                          ({"augmentation_type": "rotate"}, "'augmentation_type'"),
                          ({"top_k": "1"}, "'top_k'"),
                          ({"optimizer": "adagrad"}, "'optimizer'")):
        with pytest.raises(ValidationError, match=re.escape(fragment)):
            ALGO.hyperparameters.validate({**base, **bad})
    assert {m.name: m.direction for m in ALGO.metrics} == {"train:accuracy": "Maximize",
                                                           "validation:accuracy": "Maximize"}
    for check in kit.STATIC_CHECKS:
        check(ALGO)


@pytest.mark.slow
def test_recordio_learns_the_planted_shapes_and_serves_them(tmp_path):
    held_out = shapes(30, 3)
    ctx = fit(tmp_path, {**HP, "checkpoint_frequency": "1", "top_k": "2"},
              {"train": rec_channel(tmp_path, "train", shapes(240, 1)),
               "validation": rec_channel(tmp_path, "validation", shapes(90, 2))})
    log = ctx.log.getvalue()
    found = extract_metrics(log.splitlines(), ALGO.metrics)
    assert found["validation:accuracy"] >= 0.8 and "train:accuracy" in found  # chance is 1/3
    assert re.search(r"Epoch\[2\] Validation-top_k_accuracy_2=\S+", log)
    assert sorted(p.name for p in ctx.model_dir.glob("model-epoch-*.pt")) == [
        "model-epoch-0001.pt", "model-epoch-0002.pt", "model-epoch-0003.pt"]
    kit._assert_no_pickle(ctx.model_dir)
    predictor = ALGO.load(ctx.model_dir)
    truth = np.array([label for label, _ in held_out])
    for kind in ("PNG", "JPEG"):
        probabilities = classify(predictor, held_out, kind)
        assert probabilities.shape == (30, 3) and np.allclose(probabilities.sum(1), 1.0, atol=1e-5)
        assert (probabilities.argmax(1) == truth).mean() >= 0.8
    body = held_out[0][1]
    lines, returned = predictor.invoke(body, "application/x-image", "application/jsonlines")
    assert returned == "application/jsonlines" and lines.endswith(b"\n")
    bare, _ = predictor.invoke(body, "image/png", "")
    assert json.loads(lines) == {"prediction": json.loads(bare)}
    requests = [(body, "image/png", "application/json"), (body, "application/x-image", "application/jsonlines")]
    there = kit.predict_in_fresh_process(ALGO, ctx.model_dir, requests, tmp_path / "fresh")
    assert there == [predictor.invoke(*request) for request in requests]
    for body_, content_type, accept, status, fragment in (
            (body, "text/csv", "application/json", 415, "'text/csv' is not supported"),
            (body, "image/png", "text/csv", 406, "Accept 'text/csv'"),
            (b"not an image at all", "image/jpeg", "application/json", 400, "The request body: the image does not "
                                                                            "decode"),
            (b"", "image/png", "application/json", 400, "empty")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body_, content_type, accept)
        assert info.value.status == status and fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("form", ["lst", "rec"])
def test_multi_label_learns_independent_labels(tmp_path, form):
    train_items, validation_items = multi_label_shapes(240, 4), multi_label_shapes(90, 5)
    if form == "lst":
        channels = {**lst_channels(tmp_path, "train", train_items),
                    **lst_channels(tmp_path, "validation", validation_items, folder="held/out")}
    else:
        channels = {"train": rec_channel(tmp_path, "train", train_items),
                    "validation": rec_channel(tmp_path, "validation", validation_items)}
    hp = {**HP, "multi_label": "1", "optimizer": "adam", "learning_rate": "0.01",
          "augmentation_type": "crop_color_transform" if form == "lst" else "crop"}
    ctx = fit(tmp_path, hp, channels)
    assert extract_metrics(ctx.log.getvalue().splitlines(), ALGO.metrics)["validation:accuracy"] >= 0.8  # chance 0.5
    predictor = ALGO.load(ctx.model_dir)
    held_out = multi_label_shapes(30, 6)
    probabilities = classify(predictor, held_out)
    truth = np.array([labels for labels, _ in held_out])
    assert probabilities.shape == (30, 3) and not np.allclose(probabilities.sum(1), 1.0)
    assert ((probabilities > 0.5) == truth).mean() >= 0.8


def test_same_images_same_model_whichever_the_format_and_early_stopping(tmp_path):
    """The same images as a .rec file and as .lst-listed files train the very same (seeded) model."""
    items = shapes(48, 7)
    hp = {**HP, "epochs": "6", "learning_rate": "0.01", "early_stopping": "True", "early_stopping_min_epochs": "1",
          "early_stopping_patience": "1", "augmentation_type": "crop_color", "mini_batch_size": "16",
          "lr_scheduler_step": "1", "lr_scheduler_factor": "0"}
    answers = []
    for form in ("rec", "lst"):
        folder = tmp_path / form
        if form == "rec":
            channels = {"train": rec_channel(folder, "train", items),
                        "validation": rec_channel(folder, "validation", items[:16])}
        else:
            channels = {**lst_channels(folder, "train", items), **lst_channels(folder, "validation", items[:16])}
        ctx = fit(folder, hp, channels)
        # From epoch 1 the learning rate is 0: validation accuracy cannot improve, so patience 1 stops after it.
        assert "Early stopping after epoch 1" in ctx.log.getvalue()
        answers.append(ALGO.load(ctx.model_dir).invoke(items[0][1], "image/png", "application/json"))
    assert answers[0] == answers[1]


def test_images_are_resized_then_centre_cropped_to_image_shape():
    pixels = np.zeros((40, 20, 3), dtype=np.uint8)
    pixels[:, 10:] = 255  # the right half white
    out = Geometry(16, 16, resize=20).prepare(pixels)
    assert out.shape == (16, 16, 3) and out[:, :7].max() < 40 and out[:, 9:].min() > 215
    assert Geometry(16, 16).prepare(np.zeros((8, 12, 3), dtype=np.uint8)).shape == (16, 16, 3)  # scaled up


def _bad_rec(tmp_path: Path) -> dict[str, Channel]:
    items = shapes(3, 8)
    items[1] = (items[1][0], b"\x89PNG but truncated")
    return {"train": rec_channel(tmp_path, "train", items)}


def _bad_lst_image(tmp_path: Path) -> dict[str, Channel]:
    channels = lst_channels(tmp_path, "train", shapes(3, 8))
    channels["train"].files[2].write_bytes(b"GIF89a nonsense")
    return channels


def _lst_text(text: str):
    def make(tmp_path: Path) -> dict[str, Channel]:
        channels = lst_channels(tmp_path, "train", shapes(3, 8))
        channels["train_lst"].files[0].write_text(text)
        return channels
    return make


@pytest.mark.parametrize("make, fragment", [
    (_bad_rec, "Channel 'train', file train.rec, record 2: the image does not decode"),
    (_bad_lst_image, "Channel 'train', image shapes/img-0002.png (Channel 'train_lst', file train.lst, line 3): "
                     "the image does not decode"),
    (_lst_text("0\t1\tshapes/img-0000.png\n1 2 shapes/img-0001.png\n"),
     "Channel 'train_lst', file train.lst, line 2: expected tab-separated index, label(s) and image path"),
    (_lst_text("0\tone\tshapes/img-0000.png\n"), "file train.lst, line 1: the index and labels must be numbers"),
    (_lst_text("0\t1\tshapes/img-0000.png\n1\t7\tshapes/img-0001.png\n"),
     "train.lst, line 2: label 7 is out of range: num_classes is 3, so class labels are 0..2"),
    (_lst_text("0\t1\tshapes/missing.png\n"), "line 1: image 'shapes/missing.png' is not in channel 'train'"),
    (lambda tmp_path: {"train": lst_channels(tmp_path, "train", shapes(2, 8))["train"]},
     "the job needs a 'train_lst' channel"),
    (lambda tmp_path: {"train": rec_channel(tmp_path, "train", [(5, shapes(1, 8)[0][1])])},
     "train.rec, record 1: label 5 is out of range"),
])
def test_bad_inputs_fail_naming_the_file_record_and_field(tmp_path, make, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        fit(tmp_path, {**HP, "epochs": "1"}, make(tmp_path))


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def manifest_channel(name: str, uri: str, content_type: str = RECORDIO) -> dict:
    return {"ChannelName": name, "ContentType": content_type, "RecordWrapperType": "RecordIO",
            "InputMode": "Pipe",  # augmented manifests stream in Pipe mode on AWS
            "DataSource": {"S3DataSource": {"S3DataType": "AugmentedManifestFile", "S3Uri": uri,
                                            "AttributeNames": ["source-ref", "class"]}}}


def upload_manifest(s3, bucket: str, prefix: str, items: list) -> str:
    lines = []
    for index, (label, body) in enumerate(items):
        lines.append(json.dumps({"source-ref": put(s3, bucket, f"{prefix}/images/{index}.png", body),
                                 "class": label}))
    return put(s3, bucket, f"{prefix}/manifest.jsonl", "\n".join(lines) + "\n")


@pytest.mark.slow
def test_job_endpoint_batch_transform_and_refusals(sm, s3, rt, bucket):
    train_uri = upload_manifest(s3, bucket, "ic/train", shapes(180, 11))
    validation_uri = upload_manifest(s3, bucket, "ic/validation", shapes(60, 12))
    desc = train(sm, bucket, IC, {**HP, "epochs": "4", "num_training_samples": "180"}, [manifest_channel("train", train_uri),
                                      manifest_channel("validation", validation_uri)])
    assert metrics(desc)["validation:accuracy"] >= 0.75
    held_out = shapes(12, 13)
    endpoint = deploy(sm, IC, desc)
    answers = []
    for _, body in held_out:
        payload, returned = invoke(rt, endpoint, body, "image/png", "application/json")
        answers.append(json.loads(payload))
        assert returned == "application/json" and len(answers[-1]) == 3
    truth = np.array([label for label, _ in held_out])
    assert (np.argmax(answers, axis=1) == truth).mean() >= 0.75
    status, message = model_error(rt, endpoint, b"\x00\x01 garbage", "image/jpeg")
    assert status == 400 and "does not decode" in message
    status, message = model_error(rt, endpoint, b"1,2,3", "text/csv")
    assert status == 415 and "text/csv" in message
    sm.delete_endpoint(EndpointName=endpoint)

    for index, (_, body) in enumerate(held_out[:6]):
        put(s3, bucket, f"ic/batch/in/{index}.png", body)
    done = transform(sm, create_model(sm, IC, desc), f"s3://{bucket}/ic/batch/in/", f"s3://{bucket}/ic/batch/out/",
                     content_type=X_IMAGE, split="None", accept="application/jsonlines")
    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    for index in range(6):
        out = s3.get_object(Bucket=bucket, Key=f"ic/batch/out/{index}.png.out")["Body"].read().decode()
        assert json.loads(out)["prediction"] == pytest.approx(answers[index], abs=1e-6)

    bad_uri = upload_manifest(s3, bucket, "ic/bad", [(0, shapes(1, 14)[0][1]), (3, shapes(1, 15)[0][1])])
    failed = train(sm, bucket, IC, {**HP, "epochs": "1"}, [manifest_channel("train", bad_uri)], expect="Failed")
    assert "augmented manifest record 2: label 3 is out of range: num_classes is 3" in failed["FailureReason"]
    with pytest.raises(sm.exceptions.ClientError, match="no pretrained weights ship with sagelab"):
        train(sm, bucket, IC, {**HP, "use_pretrained_model": "1"}, [manifest_channel("train", train_uri)])
    with pytest.raises(sm.exceptions.ClientError, match="ContentType 'text/csv' is not supported"):
        train(sm, bucket, IC, HP, [manifest_channel("train", train_uri, "text/csv")])
