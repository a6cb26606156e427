"""Image classification's inference: one image per request (`image/jpeg`, `image/png` or
`application/x-image`), brought to the network's input exactly as training images were (resize, centre crop).

Answers: `application/json` (the default) a bare JSON array of class probabilities `[p0, p1, ...]`;
`application/jsonlines` `{"prediction": [p0, p1, ...]}` and a newline, what batch transform assembles line by
line. Probabilities are a softmax over the classes, or with multi_label independent sigmoids.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sagelab.algorithms.base import DataError, InferenceError, split_content_type
from sagelab.algorithms.image_classification import network as net
from sagelab.algorithms.image_classification.inputs import Geometry
from sagelab.algorithms.torch_threads import torch_threads
from sagelab.algorithms.vision import records

JSON = "application/json"
JSONLINES = "application/jsonlines"
_JSONLINES_ALIASES = ("application/jsonlines", "application/x-jsonlines", "application/jsonl")


class ImageClassificationPredictor:
    content_types = records.IMAGE_TYPES
    accept_types = (JSON, JSONLINES)
    default_accept = JSON

    def __init__(self, model_dir: Path):
        self.net, self.settings = net.load(model_dir)
        self.geometry = Geometry.of(self.settings)

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        kind, _ = split_content_type(content_type)
        if kind not in self.content_types:
            raise InferenceError(415, f"Content type {content_type!r} is not supported: send one image per request "
                                      f"as {', '.join(self.content_types)}.")
        wanted, _ = split_content_type((accept or "").split(",")[0])
        wanted = JSONLINES if wanted in _JSONLINES_ALIASES else wanted
        if wanted in ("", "*/*", "application/*"):
            wanted = self.default_accept
        if wanted not in self.accept_types:
            raise InferenceError(406, f"Accept {accept!r} is not supported. Supported: {', '.join(self.accept_types)}.")
        if not body:
            raise InferenceError(400, "The request body is empty: send one encoded image (JPEG or PNG).")
        try:
            pixels = self.geometry.prepare(records.decode_image(body, where="The request body"))
        except DataError as exc:
            raise InferenceError(400, str(exc)) from None
        with torch_threads(False), torch.no_grad():
            logits = self.net(net.to_input(pixels[None]))
            values = torch.sigmoid(logits) if self.settings["multi_label"] else torch.softmax(logits, dim=1)
        probabilities = values[0].tolist()
        if wanted == JSON:
            return json.dumps(probabilities).encode(), JSON
        return (json.dumps({"prediction": probabilities}) + "\n").encode(), JSONLINES
