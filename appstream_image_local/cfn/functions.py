"""Lambda, offline: functions registered from templates, invoked with their role's credentials.

Each function gets its own access key; before every invocation its role's policies (inline and
AWS::IAM::Policy, as the stack holds them now) are registered with the local AppStream service
and in `Functions.iam` (which the local CloudFormation API reads), which then check every call the
function makes against them, as IAM would.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appstream_image_local.cfn.invoker import AsyncInvoker
from appstream_image_local.cfn.lambda_runner import Function, Invocation, LambdaRunner
from appstream_image_local.cfn.model import ACCOUNT, REGION, Stack
from appstream_image_local.iam import IamGate

EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18  # moto keeps a record of the function; the code runs from the asset


class Functions:
    def __init__(
        self,
        runner: LambdaRunner,
        lambda_client: Any,
        iam_client: Any,
        appstream_url: str,
        stacks: Mapping[str, Stack],
        *,
        region: str = REGION,
    ) -> None:
        self.runner = runner
        self.region = region
        self.by_arn: dict[str, Function] = {}
        self._lambda = lambda_client
        self._iam = iam_client
        self._appstream_url = appstream_url
        self._stacks = stacks
        self._role = ""
        #: each invoked function's role (its access key, principal and policies): the local CloudFormation API's IAM
        self.iam = IamGate()
        #: Lambda's asynchronous invocation (the queue, retries and EventInvokeConfig), for every invoke below.
        self.invoker = AsyncInvoker(self._start)

    def register(
        self,
        name: str,
        code_dir: Path,
        handler: str,
        timeout: float,
        memory: int,
        *,
        role: str,
        stack: str,
        environment: dict[str, str],
        log_group: str = "",
    ) -> Function:
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}"
        key = "ASIA" + hashlib.sha256(arn.encode()).hexdigest()[:16].upper()  # this function's role credentials
        variables = {**environment, "AWS_ACCESS_KEY_ID": key}
        function = Function(name, arn, code_dir, handler, timeout, memory, variables, role, stack, log_group)
        self.by_arn[arn] = function
        self._lambda.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=self._moto_role(),
            Handler=handler,
            Code={"ZipFile": EMPTY_ZIP},
            Timeout=int(timeout),
        )
        return function

    def unregister(self, arn: str) -> None:
        function = self.by_arn.pop(arn, None)
        if function is not None:
            self.runner.discard(function)
            self._lambda.delete_function(FunctionName=function.name)

    def find(self, arn: str) -> Function | None:
        """The function an ARN names, qualified or not."""
        return self.by_arn.get(":".join(arn.split(":")[:7]))

    def invoke(self, function: Function, event: dict[str, Any]) -> None:
        """An asynchronous invocation (as CloudFormation and EventBridge make them): queued, retried on errors."""
        self.invoker.submit(function, event)

    def _start(self, function: Function, event: dict[str, Any]) -> Invocation:
        """Lambda runs the function with its role: the local AppStream service enforces the role's policies."""
        policies = self.role_policies(function)
        if policies is not None:
            role = function.role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")
            key, principal = function.environment["AWS_ACCESS_KEY_ID"], f"{role}/{function.name}"
            self.iam.register(key, principal, policies)
            self.appstream_control(
                "/_local/iam/principals", {"access_key": key, "arn": principal, "policies": policies}
            )
        return self.runner.invoke(function, event)

    def role_policies(self, function: Function) -> list[dict[str, Any]] | None:
        """The policy documents of the function's role (inline and AWS::IAM::Policy); None: no role found."""
        stack = self._stacks.get(function.stack)
        role = next(
            (
                live
                for live in (stack.resources.values() if stack else [])
                if live.type == "AWS::IAM::Role" and live.attributes.get("Arn") == function.role_arn
            ),
            None,
        )
        if stack is None or role is None:
            return None
        documents = [dict(p["PolicyDocument"]) for p in role.properties.get("Policies", [])]
        documents += [
            dict(live.properties["PolicyDocument"])
            for live in stack.resources.values()
            if live.type == "AWS::IAM::Policy" and role.physical_id in live.properties.get("Roles", [])
        ]
        return documents

    def policy_statements(self, function: Function) -> list[dict[str, Any]]:
        """The resource policy moto keeps on the function (crhelper's polling permissions)."""
        try:
            return list(json.loads(self._lambda.get_policy(FunctionName=function.name)["Policy"]).get("Statement", []))
        except self._lambda.exceptions.ResourceNotFoundException:
            return []

    def appstream_control(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - the local service's loopback URL
            f"{self._appstream_url}{path}", data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def _moto_role(self) -> str:
        """The role moto wants on create_function (made on first use: no calls when constructed)."""
        if not self._role:
            try:
                made = self._iam.create_role(RoleName="local-lambda", AssumeRolePolicyDocument="{}")
                self._role = made["Role"]["Arn"]
            except self._iam.exceptions.EntityAlreadyExistsException:
                self._role = self._iam.get_role(RoleName="local-lambda")["Role"]["Arn"]
        return self._role
