"""What resource handlers may use: the local AWS clients, Lambda, the custom resource protocol.

Handlers get this, not the engine (driver.Cloud): they cannot reach other stacks, exports or the
rollback state, only the services a resource of their type talks to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appstream_image_local.cfn.functions import Functions
from appstream_image_local.cfn.protocol import Requests


@dataclass(frozen=True)
class Services:
    s3: Any
    ssm: Any
    ecr: Any
    functions: Functions  # Lambda: registered functions, their invocation, the local AppStream controls
    requests: Requests  # the custom resource protocol, and the wait that keeps Lambda and EventBridge running
    workdir: Path
    fleet_switch: float  # seconds a fleet takes to let go of its old image
    function_timeout: Callable[[float], float]  # a function's Timeout, or the Cloud's override
