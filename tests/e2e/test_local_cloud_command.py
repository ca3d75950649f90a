"""`python -m appstream_image_local.cloud`: prints the export lines, serves what they point at, stops on Ctrl-C."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROOT


def test_the_command_prints_exports_that_reach_the_offline_cloud_and_stops_on_interrupt(tmp_path) -> None:
    command = [sys.executable, "-m", "appstream_image_local.cloud", "--seed", "golden-base", "--workdir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        for line in process.stdout:
            name, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
            exports[name] = shlex.split(value)[0]
            if name == "NODE_EXTRA_CA_CERTS":  # the last line
                break
        for needed in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDFORMATION", "AWS_ENDPOINT_URL_APPSTREAM",
                       "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE"):  # fmt: skip
            assert exports.get(needed), needed
        session = boto3.session.Session(
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
            region_name=exports["AWS_REGION"],
        )
        sts = session.client("sts", endpoint_url=exports["AWS_ENDPOINT_URL"], verify=exports["AWS_CA_BUNDLE"])
        assert sts.get_caller_identity()["Account"] == "123456789012"
        cfn = session.client("cloudformation", endpoint_url=exports["AWS_ENDPOINT_URL_CLOUDFORMATION"])
        with pytest.raises(ClientError, match="Stack with id CDKToolkit does not exist"):
            cfn.describe_stacks(StackName="CDKToolkit")
        appstream = session.client("appstream", endpoint_url=exports["AWS_ENDPOINT_URL_APPSTREAM"])
        assert [i["Name"] for i in appstream.describe_images(Type="PRIVATE")["Images"]] == ["golden-base"]
        assert os.path.getsize(exports["AWS_CONFIG_FILE"]) == 0  # no profile of the user's leaks in
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0
    finally:
        process.kill()
        process.wait()


def test_the_env_file_appears_whole_once_the_cloud_answers_and_images_can_be_added_while_it_runs(tmp_path) -> None:
    import json
    import time
    import urllib.request

    env_file = tmp_path / "cloud.env"
    workdir = tmp_path / "not" / "yet" / "there"  # made by the command
    scenario = ROOT / "appstream_image_local" / "scenarios" / "demo.json"
    command = [sys.executable, "-m", "appstream_image_local.cloud", "--scenario", str(scenario),
               "--workdir", str(workdir),
               "--env-file", str(env_file)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):  # the README's wait: until the file exists and is not empty
            if env_file.exists() and env_file.stat().st_size:
                break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.05)
        lines = env_file.read_text().splitlines()
        exports = {k.removeprefix("export "): shlex.split(v)[0] for k, _, v in (line.partition("=") for line in lines)}
        assert exports["AWS_ENDPOINT_URL"].startswith("https://localhost:")  # written whole: the last line is there
        assert "NODE_EXTRA_CA_CERTS" in exports
        url = exports["AWS_ENDPOINT_URL_APPSTREAM"]
        request = urllib.request.Request(
            f"{url}/_local/images/create", data=json.dumps({"name": "second-base"}).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()
        appstream = boto3.client(
            "appstream", endpoint_url=url, region_name="us-east-1", aws_access_key_id="local",
            aws_secret_access_key="local",
        )  # fmt: skip
        names = {i["Name"] for i in appstream.describe_images(Type="PRIVATE")["Images"]}
        assert {"golden-base", "second-base"} <= names  # the scenario's images and the one added now
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0
        assert not env_file.exists()  # its endpoints are gone with it
    finally:
        process.kill()
        process.wait()
