"""Semantic Segmentation's predictor: one image per request.

    image/jpeg (also image/png, application/x-image)  the image to segment
    Accept image/png (the default)                     the class-id mask: a single-channel 8-bit PNG the
                                                       size of the input, as the training masks are
    Accept application/x-recordio-protobuf             the per-pixel class probabilities: one recordIO-framed
                                                       aialgs.data.Record whose features hold "target", a
                                                       float32 tensor of the probabilities in (1, classes,
                                                       height, width) order, and "shape", an int32 tensor
                                                       [1, classes, height, width] (what SageMaker's example
                                                       notebook reads: reshape "target" by "shape", squeeze
                                                       axis 0, argmax over axis 0); application/x-protobuf is
                                                       taken as the same
The image's long side is rescaled to base_size (the training scale), segmented, and the class scores are
rescaled bilinearly to the input's size before the softmax / argmax. Batch transform sends each image object
as one request (SplitType None).
Errors: 415 for another content type, 406 for another Accept, 400 for a body that is not a decodable image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from sagelab.algorithms.base import DataError, InferenceError, split_content_type
from sagelab.algorithms.first_party.recordio import Record, Tensor, encode_record, frame_records
from sagelab.algorithms.semantic_segmentation import network as net
from sagelab.algorithms.semantic_segmentation.data import IMAGE_TYPES
from sagelab.algorithms.torch_threads import torch_threads
from sagelab.algorithms.vision.records import decode_image, encode_png, resize

PNG, PROTOBUF = "image/png", "application/x-recordio-protobuf"
_PROTOBUF_ALIASES = (PROTOBUF, "application/x-protobuf")
#: pixels of the rescaled image from which inference uses every core
PARALLEL_PIXELS = 500_000


class SegmentationPredictor:
    content_types = IMAGE_TYPES
    accept_types = (PNG, PROTOBUF)
    default_accept = PNG

    def __init__(self, model_dir: Path):
        self.net = net.load(model_dir)
        self.settings = self.net.settings

    def probabilities(self, image: np.ndarray) -> torch.Tensor:
        """(classes, h, w) class probabilities of a uint8 (h, w, 3) image."""
        h, w = image.shape[:2]
        base = self.settings["base_size"]
        scale = base / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        with torch_threads(nh * nw >= PARALLEL_PIXELS), torch.no_grad():
            scores = self.net(net.batch([resize(image, nh, nw)]))
            scores = F.interpolate(scores, size=(h, w), mode="bilinear", align_corners=False)
            return torch.softmax(scores[0], dim=0)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        kind, _ = split_content_type(content_type)
        if kind not in self.content_types:
            raise InferenceError(415, f"Content type {content_type!r} is not supported. Supported: "
                                      f"{', '.join(self.content_types)} (one image per request).")
        wanted, _ = split_content_type((accept or "").split(",")[0])
        if wanted in ("", "*/*", "image/*"):
            wanted = PNG
        if wanted in _PROTOBUF_ALIASES:
            wanted = PROTOBUF
        if wanted not in self.accept_types:
            raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(self.accept_types)}.")
        if not body:
            raise InferenceError(400, "The request body is empty: send one JPEG or PNG image.")
        try:
            image = decode_image(bytes(body), where="The request body")
        except DataError as exc:
            raise InferenceError(400, str(exc)) from None
        probabilities = self.probabilities(image)
        if wanted == PNG:
            return encode_png(probabilities.argmax(0).numpy().astype(np.uint8)), PNG
        values = probabilities.unsqueeze(0).numpy()
        record = Record(features={"target": Tensor(values.ravel(), kind="float32"),
                                  "shape": Tensor(np.array(values.shape, dtype=np.int32), kind="int32")})
        return frame_records([encode_record(record)]), PROTOBUF
