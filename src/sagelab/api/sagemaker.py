"""SageMaker control plane (placeholder while the training service is written)."""

from __future__ import annotations

from sagelab.api.json_protocol import JsonService


class SageMakerFace:
    protocol = "json"

    def __init__(self, platform):
        self.platform = platform
        self.json = JsonService("sagemaker", "SageMaker", {})

    def handle(self, request):
        return self.json.handle(request)
