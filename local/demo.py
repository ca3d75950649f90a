"""The offline demo: start the local AppStream service with the demo scenario and show it."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3

from local.appstream import LocalAppStream, load_scenario
from local.appstream.scenario import read_scenario_file

SCENARIO = Path(__file__).parent / "scenarios" / "demo.json"


def main() -> int:
    backend, faults = load_scenario(read_scenario_file(SCENARIO))
    with LocalAppStream(backend, faults) as service:
        print(f"local AppStream service at {service.url}")
        client = boto3.client(
            "appstream",
            endpoint_url=service.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local service ignores them
        )
        for page in client.get_paginator("describe_images").paginate():
            for image in page["Images"]:
                print(f"  image {image['Name']:<40} {image['State']:<10} {image['Visibility']}")
        for builder in client.describe_image_builders()["ImageBuilders"]:
            print(f"  image builder {builder['Name']} uses {builder['ImageArn']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
