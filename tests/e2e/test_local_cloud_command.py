"""The `appstream-image-local` command (`python -m appstream_image_local.cloud`): prints the export lines, serves
what they point at, takes packaged scenarios by name, says which extra it needs, stops on Ctrl-C at once."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

from bench.console_stop import busy_deploy, functions_running, interrupt, start
from tests.conftest import ROOT

COMMAND = [sys.executable, "-m", "appstream_image_local.cloud"]
# The command as run in a venv without the [local] extra: importing any of `blocked` fails as a missing package does.
WITHOUT = """
import runpy, sys

BLOCKED = sys.argv[1].split(",")

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Missing())
sys.argv = ["appstream-image-local", *sys.argv[2:]]
runpy.run_module("appstream_image_local.cloud", run_name="__main__", alter_sys=True)
"""


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


def test_help_names_the_command_and_lists_the_packaged_scenarios() -> None:
    result = subprocess.run([*COMMAND, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.startswith("usage: appstream-image-local ")
    listing = result.stdout.split("packaged scenarios (--scenario NAME):", 1)[1]
    assert {line.split()[0] for line in listing.strip().splitlines()} == {"demo", "aws-durations"}


def test_an_unknown_scenario_name_fails_in_one_line_naming_the_known_ones(tmp_path) -> None:
    result = subprocess.run(
        [*COMMAND, "--scenario", "demo-typo", "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("appstream-image-local: --scenario demo-typo: ")
    assert "aws-durations, demo" in line


@pytest.mark.parametrize("missing", ["yaml", "moto", "cryptography", "werkzeug", "regex,policy_sentry"])
def test_without_the_local_extra_the_command_says_which_extra_to_install(tmp_path, missing: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT, missing, "--seed", "golden-base", "--workdir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        'appstream-image-local needs the [local] extra: pip install "appstream-image-provider[local]"'
    ]
    assert result.stdout == ""
    usage = subprocess.run(
        [sys.executable, "-c", WITHOUT, missing, "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert usage.returncode == 0  # the help needs nothing of the extra
    assert "demo" in usage.stdout


def test_ctrl_c_stops_a_deploy_under_way_and_no_function_outlives_the_command(tmp_path) -> None:
    """The deploy's custom resources wait on functions that never answer: Ctrl-C ends the command (the target is
    2 s, measured by bench/console_stop.py; the bound here is for a loaded machine) and every function process."""
    command = start(tmp_path, "--scenario", "demo")  # a packaged scenario, by name
    try:
        images = {i["Name"] for i in command.client("appstream").describe_images(Type="PRIVATE")["Images"]}
        assert {"golden-base", "builder-output-2026-11"} <= images
        pids = busy_deploy(command, 2)
        assert set(pids) <= set(functions_running(command.workdir))
        _seconds, code = interrupt(command, timeout=20)
        assert code == 0
        assert functions_running(command.workdir) == []
        assert command.process.stderr is not None
        assert "Traceback" not in command.process.stderr.read()
    finally:
        command.kill()  # a failed run leaves nothing behind either
