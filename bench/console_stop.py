"""Ctrl-C on `appstream-image-local`: seconds from SIGINT to the command's exit, idle and with a deploy under way
whose custom resources' functions are busy (they never answer), and how many function processes outlive it.

The target is 2 s, with nothing left running. `python -m bench.console_stop` prints the figures;
tests/e2e/test_local_cloud_command.py drives the command with the same helpers.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "busy-functions"
TARGET_SECONDS = 2.0
# Busy until killed: it writes its process id where the resource says, then never answers.
BUSY_HANDLER = """
import os, time

def handler(event, context):
    with open(event["ResourceProperties"]["PidFile"] + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.rename(event["ResourceProperties"]["PidFile"] + ".tmp", event["ResourceProperties"]["PidFile"])
    while True:
        time.sleep(0.05)
"""


@dataclass
class Command:
    """The command, started and answering; `exports` are the lines of its env file."""

    process: subprocess.Popen[str]
    workdir: Path
    exports: dict[str, str]

    def kill(self) -> None:
        """SIGKILL to the command (if still there) and to any process of its functions: nothing is left behind."""
        self.process.kill()
        self.process.wait()
        for pid in functions_running(self.workdir):
            os.kill(pid, signal.SIGKILL)

    def client(self, service: str) -> Any:
        """A boto3 client of the command's cloud, as its exports configure one."""
        endpoint = self.exports.get(f"AWS_ENDPOINT_URL_{service.upper()}", self.exports["AWS_ENDPOINT_URL"])
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint,
            region_name=self.exports["AWS_REGION"],
            verify=self.exports["AWS_CA_BUNDLE"],
            aws_access_key_id=self.exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.exports["AWS_SECRET_ACCESS_KEY"],
        )


def start(workdir: Path, *args: str, timeout: float = 120) -> Command:
    """`python -m appstream_image_local.cloud ARGS` with its own workdir, once its env file is written."""
    env_file = workdir / "cloud.env"
    command = [sys.executable, "-m", "appstream_image_local.cloud", "--workdir", str(workdir / "cloud"),
               "--env-file", str(env_file), *args]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ends = time.monotonic() + timeout
    while not (env_file.exists() and env_file.stat().st_size):
        if process.poll() is not None or time.monotonic() > ends:
            process.kill()
            raise RuntimeError(f"the command did not come up: {process.communicate()[1][-2000:]}")
        time.sleep(0.05)
    lines = env_file.read_text().splitlines()
    exports = {k.removeprefix("export "): shlex.split(v)[0] for k, _, v in (line.partition("=") for line in lines)}
    return Command(process, workdir / "cloud", exports)


def busy_deploy(command: Command, count: int, timeout: float = 120) -> list[int]:
    """A stack whose `count` custom resources' function never answers, under way; the busy processes' ids."""
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", BUSY_HANDLER)
    s3 = command.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="busy.zip", Body=code.getvalue())
    pid_files = [command.workdir.parent / f"busy-{n}.pid" for n in range(count)]
    resources: dict[str, Any] = {
        "Busy": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "index.handler",
                "Timeout": 900,
                "Role": "arn:aws:iam::123456789012:role/busy",
                "Code": {"S3Bucket": BUCKET, "S3Key": "busy.zip"},
            },
        },
    }
    for n, pid_file in enumerate(pid_files):
        resources[f"Waiting{n}"] = {
            "Type": "Custom::Waiting",
            "Properties": {"ServiceToken": {"Fn::GetAtt": ["Busy", "Arn"]}, "PidFile": str(pid_file)},
        }
    command.client("cloudformation").create_stack(StackName="Busy", TemplateBody=json.dumps({"Resources": resources}))
    ends = time.monotonic() + timeout
    while not all(f.exists() for f in pid_files):
        if time.monotonic() > ends:
            raise RuntimeError("the busy functions did not start")
        time.sleep(0.05)
    return [int(f.read_text()) for f in pid_files]


def interrupt(command: Command, timeout: float = 120) -> tuple[float, int]:
    """Ctrl-C: seconds to the command's exit, and its exit code."""
    started = time.monotonic()
    command.process.send_signal(signal.SIGINT)
    code = command.process.wait(timeout=timeout)
    return time.monotonic() - started, code


def functions_running(workdir: Path) -> list[int]:
    """Processes (not zombies) of the functions of the cloud whose workdir this is: their LAMBDA_TASK_ROOT is in it."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours
            continue
        roots = [v.removeprefix(b"LAMBDA_TASK_ROOT=") for v in environ if v.startswith(b"LAMBDA_TASK_ROOT=")]
        if state != "Z" and any(os.fsdecode(r).startswith(str(workdir)) for r in roots):
            found.append(int(proc.name))
    return found


def run(repeats: int = 3, busy: int = 2) -> dict[str, Any]:
    """Idle stops and busy stops, `repeats` each."""
    idle: list[float] = []
    loaded: list[float] = []
    left = 0
    for _ in range(repeats):
        for times, functions in ((idle, 0), (loaded, busy)):
            with tempfile.TemporaryDirectory(prefix="console-stop-") as tmp:
                command = start(Path(tmp))
                try:
                    if functions:
                        busy_deploy(command, functions)
                    seconds, code = interrupt(command)
                    if code != 0:
                        raise RuntimeError(f"the command exited {code}: {command.process.communicate()[1][-2000:]}")
                    times.append(seconds)
                    left += len(functions_running(command.workdir))
                finally:
                    command.kill()
    return {
        "idle": _summary(idle),
        "busy": _summary(loaded),
        "busy_functions": busy,
        "functions_left": left,
        "target_seconds": TARGET_SECONDS,
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def report_lines(result: dict[str, Any]) -> list[str]:
    """A section for bench/results.md."""
    idle, busy = result["idle"], result["busy"]
    ok = busy["max"] <= result["target_seconds"] and idle["max"] <= result["target_seconds"]
    ok = ok and result["functions_left"] == 0
    return [
        "## 11. Ctrl-C on appstream-image-local",
        "",
        f"Seconds from SIGINT to the command's exit, median (min-max) of {idle['n']}: idle {idle['median']:.2f} "
        f"({idle['min']:.2f}-{idle['max']:.2f}); with a deploy under way and {result['busy_functions']} busy function "
        f"environments {busy['median']:.2f} ({busy['min']:.2f}-{busy['max']:.2f}); function processes left running "
        f"{result['functions_left']} (target: within {result['target_seconds']:g} s, none left: "
        f"{'met' if ok else 'MISSED'}).",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console_stop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2, help="custom resources whose function is busy")
    args = parser.parse_args()
    print("\n".join(report_lines(run(args.repeats, args.busy))))


if __name__ == "__main__":
    main()
