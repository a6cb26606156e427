"""The web console: server-rendered pages at `/console` on the server's own port.

A browser logs in with an access key pair and gets a signed session cookie; every page then acts as that
principal by calling the same API faces in-process (`gateway`), so IAM decides and CloudTrail records exactly
as for boto3. `routes.console_app` builds the ASGI app that `SagelabApp` hands `/console/...` to.
"""

from sagelab.console.routes import CONSOLE_PREFIX, console_app

__all__ = ["CONSOLE_PREFIX", "console_app"]
