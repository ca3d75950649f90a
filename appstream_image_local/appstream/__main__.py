"""Run the local AppStream service: `python -m appstream_image_local.appstream --port 0 --scenario F`."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from appstream_image_local.appstream.scenario import load_scenario, read_scenario_file
from appstream_image_local.appstream.server import LocalAppStream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appstream_image_local.appstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only; default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--scenario", help="JSON or YAML scenario file (default: an empty account)")
    parser.add_argument("--time-scale", type=float, help="multiply every transition's duration (default 1.0)")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error(f"--host {args.host}: the local service binds to loopback addresses only")
    data = read_scenario_file(args.scenario) if args.scenario else {}
    backend, faults = load_scenario(data, time_scale=args.time_scale)
    service = LocalAppStream(backend, faults, host=args.host, port=args.port).start()
    print(service.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
