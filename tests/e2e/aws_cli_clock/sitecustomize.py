"""The AWS CLI's waits, time-scaled: on PYTHONPATH (tests/e2e/aws_cli_clock), this module makes an `aws` process
sleep AWS_CLI_TIME_SCALE times as long; any other Python process (the offline cloud, a CDK app) is left alone.

`aws cloudformation deploy` polls every 30 s (awscli's customizations/cloudformation/deployer.py, `Delay: 30`), as do
`aws cloudformation wait ...` and its change-set wait every 5 s (botocore's waiter models). Offline, a stack ends in
seconds, so each command would spend most of its half-minute asleep: the offline cloud's stacks run at their own
speed, and the CLI's calls and answers are unchanged, only fewer seconds apart. Its waiters keep their attempt counts
(120 polls for a deploy: 6 minutes at 0.1), so a stack that never ends still fails the command.
"""

import os
import sys
import time

_SCALE = float(os.environ.get("AWS_CLI_TIME_SCALE", "1"))
_sleep = time.sleep


def _scaled(seconds: float) -> None:
    """Sleeps `seconds`, scaled when this process is the AWS CLI (sys.argv is set by the time anything sleeps)."""
    _sleep(seconds * _SCALE if os.path.basename(sys.argv[0]) == "aws" else seconds)


time.sleep = _scaled
