"""Run the server: build the platform, then hand its ASGI app to uvicorn."""

from __future__ import annotations

import uvicorn

from sagelab.api.faces import build_app
from sagelab.platform import Platform
from sagelab.settings import Settings


def serve(settings: Settings) -> None:
    platform = Platform(settings).open()
    platform.start_serving()
    try:
        print(f"sagelab listening on http://{settings.host}:{settings.port} (home {settings.home})", flush=True)
        uvicorn.run(build_app(platform), host=settings.host, port=settings.port, log_level="warning",
                    loop="uvloop", http="httptools", lifespan="on", timeout_keep_alive=30)
    finally:
        platform.close()
