"""The framework images script mode answers to, and the versions each has.

The versions are those of the SageMaker Python SDK's `image_uri_config` (sklearn.json, pytorch.json,
xgboost.json) for the CPU images; a tag is `<version>[-cpu|-gpu][-py3|-pyNNN]`. PyTorch tags may use the
short version ("2.1") or the full one ("2.1.0").
"""

from __future__ import annotations

import dataclasses
import re

from sagelab.errors import ValidationError


@dataclasses.dataclass(frozen=True)
class Framework:
    name: str
    #: Image repositories, training and inference ones.
    repositories: tuple[str, ...]
    versions: tuple[str, ...]
    #: The Python module a user script of this framework imports (what SM_FRAMEWORK_MODULE names).
    module: str

    def check_image(self, image: str, field: str) -> str:
        """The framework version the image's tag names; a ValidationError when it is not one we know."""
        tag = image.rsplit("/", 1)[-1].partition(":")[2] if ":" in image.rsplit("/", 1)[-1] else ""
        version = _TAG_SUFFIX.sub("", tag)
        if not tag or version in self.versions:
            return version or self.versions[-1]
        raise ValidationError(f"{field} {image!r}: {version!r} is not a {self.name} framework version sagelab "
                              f"knows. Known versions: {', '.join(self.versions)}.")


_TAG_SUFFIX = re.compile(r"(-(cpu|gpu))?(-py\d*)?(-ubuntu[\d.]+)?$")

_PYTORCH_FULL = ("1.0.0", "1.1.0", "1.2.0", "1.3.1", "1.4.0", "1.5.0", "1.6.0", "1.7.1", "1.8.0", "1.8.1", "1.9.0",
                 "1.9.1", "1.10.0", "1.10.2", "1.11.0", "1.12.0", "1.12.1", "1.13.1", "2.0.0", "2.0.1", "2.1.0",
                 "2.2.0", "2.3.0", "2.4.0", "2.5.1", "2.6.0", "2.7.1", "2.8.0")

SKLEARN = Framework("scikit-learn", ("sagemaker-scikit-learn",), ("0.20.0", "0.23-1", "1.0-1", "1.2-1"), "sklearn")
PYTORCH = Framework("PyTorch", ("pytorch-training", "pytorch-inference"),
                    tuple(sorted({*_PYTORCH_FULL, *(v.rsplit(".", 1)[0] for v in _PYTORCH_FULL)},
                                 key=lambda v: tuple(int(p) for p in v.split(".")))), "torch")
XGBOOST = Framework("XGBoost", ("sagemaker-xgboost",),
                    ("1", "0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1", "3.0-5"), "xgboost")

FRAMEWORKS = (SKLEARN, PYTORCH, XGBOOST)
