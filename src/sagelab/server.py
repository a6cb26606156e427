"""Run the server: build the platform, then hand its ASGI app to uvicorn."""

from __future__ import annotations

import uvicorn

from sagelab.api.faces import build_app
from sagelab.console import console_app
from sagelab.platform import Platform
from sagelab.security.tls import tls_files
from sagelab.settings import Settings


def serve(settings: Settings) -> None:
    tls = tls_files(settings.home, settings.tls_cert, settings.tls_key, settings.host) if settings.tls else None
    platform = Platform(settings).open()
    platform.start_serving()
    try:
        scheme = "https" if tls else "http"
        print(f"sagelab listening on {scheme}://{settings.host}:{settings.port} (home {settings.home})", flush=True)
        ssl = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)} if tls else {}
        app = build_app(platform)
        app.console = console_app(app, lookup_secret=platform.lookup_secret, home=platform.home.root)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                    loop="uvloop", http="httptools", lifespan="on", timeout_keep_alive=30, **ssl)
    finally:
        platform.close()
