"""Object Detection's predictor (DG `object-detection-in-formats`).

    image/jpeg, image/png (also application/x-image): one image per request, resized to image_shape
    Accept application/json (default)   {"prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}, corners
                                        normalised to [0, 1], highest score first
    Accept application/json;annotation=1
                                        {"image_size": [{"width", "height", "depth"}], "annotations": [{"class_id",
                                        "score", "left", "top", "width", "height"}, ...]} in the image's pixels
    Accept application/jsonlines        the default object on one line (batch transform)
Errors: 415 / 406 for other types; 400 for a body that is not an image.
"""

from __future__ import annotations

import json
from pathlib import Path

from sagelab.algorithms.base import DataError, InferenceError, split_content_type
from sagelab.algorithms.object_detection import network as net
from sagelab.algorithms.torch_threads import torch_threads
from sagelab.algorithms.vision import records

JSON, JSONLINES = "application/json", "application/jsonlines"
ANNOTATION = "application/json;annotation=1"
_JSONLINES_ALIASES = (JSONLINES, "application/x-jsonlines", "application/jsonl")


class ObjectDetectionPredictor:
    content_types = ("image/jpeg", "image/png", "application/x-image")
    accept_types = (JSON, ANNOTATION, JSONLINES)
    default_accept = JSON

    def __init__(self, model_dir: Path):
        self.net = net.load(model_dir)
        self.settings = self.net.settings

    def _accept(self, accept: str) -> str:
        wanted, params = split_content_type((accept or "").split(",")[0])
        if wanted in ("", "*/*", "application/*"):
            return JSON
        if wanted in _JSONLINES_ALIASES:
            return JSONLINES
        if wanted == JSON:
            return ANNOTATION if params.get("annotation") == "1" else JSON
        raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(self.accept_types)}.")

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        import torch

        kind, _ = split_content_type(content_type)
        if kind not in self.content_types:
            raise InferenceError(415, f"Content type {content_type!r} is not supported. Supported: "
                                      f"{', '.join(self.content_types)}.")
        wanted = self._accept(accept)
        if not body:
            raise InferenceError(400, "The request body is empty: send one JPEG or PNG image.")
        try:
            pixels = records.decode_image(bytes(body), where="The request body")
        except DataError as exc:
            raise InferenceError(400, str(exc)) from None
        size = self.settings["image_shape"]
        with torch_threads(False), torch.no_grad():
            logits, offsets = self.net(net.to_tensor(records.resize(pixels, size, size)[None]))
            found = net.detect(logits, offsets, self.net.anchors, self.settings["nms_threshold"])[0]
        if wanted == ANNOTATION:
            height, width = pixels.shape[:2]
            document = {"image_size": [{"width": width, "height": height, "depth": 3}], "annotations": [
                {"class_id": int(c), "score": score, "left": round(x0 * width), "top": round(y0 * height),
                 "width": round((x1 - x0) * width), "height": round((y1 - y0) * height)}
                for c, score, x0, y0, x1, y1 in found]}
            return json.dumps(document).encode(), JSON
        payload = json.dumps({"prediction": found})
        if wanted == JSONLINES:
            return (payload + "\n").encode(), JSONLINES
        return payload.encode(), JSON
