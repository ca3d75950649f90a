"""EventBridge Scheduler, offline: a one-time schedule fires once at its time (on a scaled clock) through its
execution role and is deleted after; a role that does not let it is refused and recorded; a taken name conflicts;
a schedule group deploys and deletes through the local CloudFormation (EventBridge Scheduler user guide)."""

from __future__ import annotations

import datetime
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from appstream_image_local.cfn.model import ACCOUNT, REGION
from appstream_image_local.cfn.schedules import REFUSED, Schedules
from appstream_image_local.cloud import LocalCloud
from appstream_image_local.kit import OfflineCloud
from appstream_image_local.moto_tls import MotoTls
from appstream_image_local.tls import make_certificate
from tests.conftest import FakeClock

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:poller"
SCHEDULER = {"Service": "scheduler.amazonaws.com"}


def trust(principal: dict[str, str] = SCHEDULER, **condition: dict[str, str]) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def invoke(resource: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": resource}],
    }


def at(minutes: int) -> str:
    """A one-time expression `minutes` minutes from now (UTC)."""
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})"


def fires_at(expression: str) -> float:
    """The last second of the minute the expression names, in epoch seconds (60 second precision: the stricter end)."""
    named = datetime.datetime.strptime(expression[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    return named.replace(second=59).timestamp()


def one_time(
    scheduler: Any, name: str, target: dict[str, str], *, group: str = "default", expression: str = "", after: str = ""
) -> None:
    """CreateSchedule of a one-time schedule (a minute from now unless `expression`), FlexibleTimeWindow OFF."""
    more = {"ActionAfterCompletion": after} if after else {}
    scheduler.create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression=expression or at(1),
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
        **more,
    )


def error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = raised.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


# -- the schedules, on a clock that moves only when told to ------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoTls]:
    cert, key = make_certificate(tmp_path_factory.mktemp("schedules-tls"))
    server = MotoTls(cert, key).start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto: MotoTls) -> Callable[[str], Any]:
    """boto3 clients of a fresh moto."""
    MotoTls.reset()

    def client(service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=moto.env()["AWS_ENDPOINT_URL_SCHEDULER" if service == "scheduler" else "AWS_ENDPOINT_URL_IAM"],
            verify=str(moto.cert),
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=NO_RETRY,
        )

    return client


def role(aws: Callable[[str], Any], name: str, trusted: dict[str, Any], *policies: dict[str, Any]) -> str:
    iam = aws("iam")
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trusted))["Role"]["Arn"])
    for n, policy in enumerate(policies):
        iam.put_role_policy(RoleName=name, PolicyName=f"p{n}", PolicyDocument=json.dumps(policy))
    return arn


class Deliveries:
    """What the schedules handed to Lambda: (target ARN, event)."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, arn: str, event: dict[str, Any]) -> bool:
        self.taken.append((arn, event))
        return True


def scaled(clock: FakeClock, scale: float) -> Schedules:
    """Schedules whose (monotonic) clock moves only with `clock`. moto stamps schedules with the real time; a wall
    clock stopped at the epoch places a schedule on `clock` exactly when the schedules first see it, however much
    real time a slow machine took since (each test calls `fire` right after a change)."""
    return Schedules({}, scale=scale, clock=clock, wall=lambda: 0.0)


def test_a_one_time_schedule_fires_once_at_its_time_on_a_scaled_clock_and_is_deleted_after(
    aws: Callable[[str], Any], clock: FakeClock
) -> None:
    schedules, delivered = scaled(clock, 0.1), Deliveries()
    scheduler = aws("scheduler")
    scheduler.create_schedule_group(Name="polling")
    arn = role(aws, "poll", trust(), invoke(FUNCTION_ARN))
    expression = at(3)
    scheduler.create_schedule(
        Name="poll-1",
        GroupName="polling",
        ScheduleExpression=expression,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": FUNCTION_ARN, "RoleArn": arn, "Input": json.dumps({"RequestId": "r-1"})},
        ActionAfterCompletion="DELETE",
    )
    created = scheduler.get_schedule(Name="poll-1", GroupName="polling")["CreationDate"].timestamp()
    delay = (fires_at(expression) - created) * 0.1  # a tenth of two to three minutes
    assert schedules.fire(delivered) == 0
    clock.advance(delay - 0.5)
    assert schedules.fire(delivered) == 0
    assert delivered.taken == []
    clock.advance(1.0)
    assert schedules.fire(delivered) == 1
    assert delivered.taken == [(FUNCTION_ARN, {"RequestId": "r-1"})]  # the target's Input is the event
    (fired,) = schedules.fired  # what it waited here, and what AWS would have
    assert fired.name == "polling/poll-1"
    assert fired.aws_delay == pytest.approx(fires_at(expression) - created, abs=0.01)
    assert fired.waited == pytest.approx(delay + 0.5)  # the clock's moves since the first look
    with pytest.raises(ClientError, match="does not exist"):  # ActionAfterCompletion DELETE
        scheduler.get_schedule(Name="poll-1", GroupName="polling")
    clock.advance(3600)
    assert schedules.fire(delivered) == 0
    assert schedules.refused == []


def test_a_schedule_kept_after_completion_does_not_fire_again_until_it_is_changed(
    aws: Callable[[str], Any], clock: FakeClock
) -> None:
    schedules, delivered = scaled(clock, 0.01), Deliveries()
    scheduler = aws("scheduler")
    arn = role(aws, "poll", trust(), invoke(FUNCTION_ARN))
    target = {"Arn": FUNCTION_ARN, "RoleArn": arn}
    scheduler.create_schedule(
        Name="once", ScheduleExpression=at(1), FlexibleTimeWindow={"Mode": "OFF"}, Target=target
    )  # ActionAfterCompletion NONE: it stays
    schedules.fire(delivered)
    clock.advance(10)
    assert schedules.fire(delivered) == 1
    assert delivered.taken == [(FUNCTION_ARN, {})]  # no Input: an empty event
    clock.advance(3600)
    assert schedules.fire(delivered) == 0
    assert scheduler.get_schedule(Name="once")["Name"] == "once"
    scheduler.update_schedule(Name="once", ScheduleExpression=at(2), FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    schedules.fire(delivered)
    clock.advance(10)
    assert schedules.fire(delivered) == 1  # a changed schedule is a new one


def test_a_flexible_window_and_rate_schedules(aws: Callable[[str], Any], clock: FakeClock) -> None:
    schedules, delivered = scaled(clock, 0.1), Deliveries()
    scheduler = aws("scheduler")
    arn = role(aws, "poll", trust(), invoke(FUNCTION_ARN))
    target = {"Arn": FUNCTION_ARN, "RoleArn": arn}
    expression = at(2)
    window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5}
    scheduler.create_schedule(Name="flexible", ScheduleExpression=expression, FlexibleTimeWindow=window, Target=target)
    one_time(scheduler, "rate", target, expression="rate(1 minute)")
    created = scheduler.get_schedule(Name="flexible")["CreationDate"].timestamp()
    schedules.fire(delivered)
    clock.advance((fires_at(expression) - created) * 0.1 + 1)
    assert schedules.fire(delivered) == 0  # within its window: fired at the window's end (the latest)
    clock.advance(300 * 0.1)
    assert schedules.fire(delivered) == 1
    clock.advance(3600)
    assert schedules.fire(delivered) == 0  # rate() schedules do not fire offline


@pytest.mark.parametrize(
    ("trusted", "policies", "problem"),
    [
        (trust({"Service": "lambda.amazonaws.com"}), [invoke(FUNCTION_ARN)], "does not let scheduler.amazonaws.com"),
        (trust(StringEquals={"aws:SourceAccount": "210987654321"}), [invoke(FUNCTION_ARN)], "does not let"),
        (
            trust(ArnEquals={"aws:SourceArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/other"}),
            [invoke(FUNCTION_ARN)],
            "does not let",
        ),
        (trust(), [invoke(f"{FUNCTION_ARN}-other")], "is not authorized to perform: lambda:InvokeFunction"),
        (trust(), [], "is not authorized to perform: lambda:InvokeFunction"),
        (None, [], "does not exist"),
    ],
    ids=["trusts-lambda", "other-account", "other-group", "other-function", "no-policy", "no-role"],
)
def test_a_schedule_whose_role_does_not_let_it_invoke_is_refused_and_recorded(
    aws: Callable[[str], Any],
    clock: FakeClock,
    trusted: dict[str, Any] | None,
    policies: list[dict[str, Any]],
    problem: str,
) -> None:
    schedules, delivered = scaled(clock, 0.01), Deliveries()
    arn = role(aws, "poll", trusted, *policies) if trusted else f"arn:aws:iam::{ACCOUNT}:role/nobody"
    scheduler = aws("scheduler")
    target = {"Arn": FUNCTION_ARN, "RoleArn": arn}
    one_time(scheduler, "poll-1", target, after="DELETE")
    schedules.fire(delivered)
    clock.advance(10)
    assert schedules.fire(delivered) == 0
    clock.advance(3600)
    assert schedules.fire(delivered) == 0
    assert delivered.taken == []
    assert len(schedules.refused) == 1  # recorded once
    assert schedules.refused[0].startswith(f"{REFUSED} schedule default/poll-1: ")
    assert problem in schedules.refused[0]
    assert scheduler.get_schedule(Name="poll-1")["Name"] == "poll-1"  # not completed: not deleted


def test_a_trust_scoped_to_the_schedules_group_and_account_lets_it_invoke(
    aws: Callable[[str], Any], clock: FakeClock
) -> None:
    schedules, delivered = scaled(clock, 0.01), Deliveries()
    scheduler = aws("scheduler")
    group = scheduler.create_schedule_group(Name="polling")["ScheduleGroupArn"]
    scoped = trust(StringEquals={"aws:SourceAccount": ACCOUNT}, ArnLike={"aws:SourceArn": group})
    arn = role(aws, "poll", scoped, invoke(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:*"))
    one_time(scheduler, "poll-1", {"Arn": FUNCTION_ARN, "RoleArn": arn}, group="polling")
    schedules.fire(delivered)
    clock.advance(10)
    assert schedules.fire(delivered) == 1
    assert schedules.refused == []


def test_a_taken_name_conflicts_and_names_and_groups_are_checked(aws: Callable[[str], Any]) -> None:
    scheduler = aws("scheduler")
    target = {"Arn": FUNCTION_ARN, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/poll"}

    def create(name: str, group: str = "default") -> None:
        scheduler.create_schedule(
            Name=name, GroupName=group, ScheduleExpression=at(5), FlexibleTimeWindow={"Mode": "OFF"}, Target=target
        )

    create("poll-1")
    with pytest.raises(ClientError, match="already exists") as raised:
        create("poll-1")
    assert error(raised) == ("ConflictException", 409)
    scheduler.create_schedule_group(Name="polling")
    create("poll-1", "polling")  # a name is taken within its group
    with pytest.raises(ClientError) as raised:
        scheduler.create_schedule_group(Name="polling")
    assert error(raised) == ("ConflictException", 409)
    with pytest.raises(ClientError) as raised:
        create("poll-2", "nowhere")
    assert error(raised) == ("ResourceNotFoundException", 404)
    for bad in ("poll 1", "x" * 65, "poll!1"):
        with pytest.raises(ClientError) as raised:
            create(bad)
        assert error(raised) == ("ValidationException", 400)
    with pytest.raises(ClientError) as raised:
        one_time(scheduler, "late", target, expression="at(2026-13-01T00:00:00)")
    assert error(raised) == ("ValidationException", 400)
    create("a-Z_0.9" + "x" * 57)  # 64 of [0-9a-zA-Z-_.]


# -- through the local cloud ------------------------------------------------------------------------------------

HANDLER = """
import json, os, urllib.request

def handler(event, context):
    if "RequestType" in event:  # the custom resource that starts the stack's Lambda and schedules
        body = json.dumps({"Status": "SUCCESS", "PhysicalResourceId": "thing-1", "StackId": event["StackId"],
                           "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"]})
        request = urllib.request.Request(event["ResponseURL"], data=body.encode(), method="PUT",
                                         headers={"Content-Type": ""})
        urllib.request.urlopen(request, timeout=10).close()
        return
    with open(event["marker"], "a") as out:
        out.write(json.dumps({"event": event, "scheduler": os.environ.get("AWS_ENDPOINT_URL_SCHEDULER", "")}) + "\\n")
"""


def stack_template() -> dict[str, Any]:
    return {
        "Resources": {
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Handler": "index.handler",
                    "Timeout": 30,
                    "Role": f"arn:aws:iam::{ACCOUNT}:role/poller-execution",
                    "Code": {"S3Bucket": "functions", "S3Key": "poller.zip"},
                },
            },
            "SchedulerRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": trust(StringEquals={"aws:SourceAccount": ACCOUNT})},
            },
            "Invoke": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "invoke",
                    "Roles": [{"Ref": "SchedulerRole"}],
                    "PolicyDocument": invoke({"Fn::GetAtt": ["Function", "Arn"]}),
                },
            },
            "Group": {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {"Name": "polling"}},
            "Thing": {"Type": "Custom::Thing", "Properties": {"ServiceToken": {"Fn::GetAtt": ["Function", "Arn"]}}},
        },
        "Outputs": {
            "FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}},
            "RoleArn": {"Value": {"Fn::GetAtt": ["SchedulerRole", "Arn"]}},
        },
    }


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(tmp_path / "cloud", printer=lambda _line: None, schedule_scale=0.01) as cloud:
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", HANDLER)
        assert cloud.cloud is not None
        cloud.cloud.s3.create_bucket(Bucket="functions")
        cloud.cloud.s3.put_object(Bucket="functions", Key="poller.zip", Body=code.getvalue())
        yield cloud


def eventually(what: str, found: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := found()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)
    return result


def local_client(local: LocalCloud, service: str) -> Any:
    env = local.env()
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=env.get(f"AWS_ENDPOINT_URL_{service.upper()}", env["AWS_ENDPOINT_URL"]),
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        verify=env["AWS_CA_BUNDLE"],
        config=NO_RETRY,
    )


def settled(cfn: Any, stack: str) -> str:
    """The stack's status once its operation has ended."""

    def status() -> str:
        found = str(cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])
        return "" if found.endswith("_IN_PROGRESS") else found

    return str(eventually(f"{stack} settles", status))


def gone(scheduler: Any, name: str, group: str) -> bool:
    try:
        scheduler.get_schedule(Name=name, GroupName=group)
    except scheduler.exceptions.ResourceNotFoundException:
        return True
    return False


def test_a_schedule_invokes_its_function_with_its_input_through_the_stacks_role_and_a_wrong_role_is_reported(
    local: LocalCloud, tmp_path: Path
) -> None:
    assert local.cloud is not None
    assert local.moto is not None
    template = tmp_path / "polling.json"
    template.write_text(json.dumps(stack_template()))
    stack = local.cloud.deploy("Polling", template)
    function, role_arn = stack.outputs["FunctionArn"], stack.outputs["RoleArn"]
    scheduler = local_client(local, "scheduler")
    marker = tmp_path / "invoked.jsonl"
    event = {"RequestId": "r-1", "marker": str(marker)}
    target = {"Arn": function, "RoleArn": role_arn, "Input": json.dumps(event)}
    one_time(scheduler, "poll-1", target, group="polling", after="DELETE")
    eventually("the schedule is deleted after its invocation", lambda: gone(scheduler, "poll-1", "polling"))
    lines = eventually("the function ran", lambda: marker.exists() and marker.read_text().splitlines())
    assert [json.loads(line) for line in lines] == [{"event": event, "scheduler": local.moto.url}]

    iam = local_client(local, "iam")  # a role made with the IAM API that may not invoke the function
    iam.create_role(RoleName="no-invoke", AssumeRolePolicyDocument=json.dumps(trust()))
    wrong = {**target, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/no-invoke"}
    one_time(scheduler, "poll-2", wrong, group="polling", after="DELETE")
    engine = local.cloud
    refused = eventually("the refusal is recorded", lambda: [v for v in engine.violations if REFUSED in v])
    assert refused == [
        f"{REFUSED} schedule polling/poll-2: arn:aws:iam::{ACCOUNT}:role/no-invoke is not authorized to perform: "
        f"lambda:InvokeFunction on resource: {function}"
    ]
    with pytest.raises(AssertionError) as unclean:
        OfflineCloud(local, tmp_path).assert_clean("Polling")
    assert "schedule polling/poll-2 is still scheduled" in str(unclean.value)
    assert refused[0] in str(unclean.value)
    assert len(marker.read_text().splitlines()) == 1


def test_a_schedule_group_deploys_and_deletes_through_the_local_cloudformation(local: LocalCloud) -> None:
    cfn, scheduler = local_client(local, "cloudformation"), local_client(local, "scheduler")
    body = {
        "Resources": {"Group": {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {"Name": "image-polling"}}},
        "Outputs": {"Name": {"Value": {"Ref": "Group"}}, "Arn": {"Value": {"Fn::GetAtt": ["Group", "Arn"]}}},
    }
    cfn.create_stack(StackName="Groups", TemplateBody=json.dumps(body))
    assert settled(cfn, "Groups") == "CREATE_COMPLETE"
    described = cfn.describe_stacks(StackName="Groups")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    group = scheduler.get_schedule_group(Name="image-polling")
    assert outputs == {"Name": "image-polling", "Arn": group["Arn"]}
    assert group["Arn"] == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/image-polling"
    scheduler.create_schedule(
        Name="poll-1",
        GroupName="image-polling",
        ScheduleExpression=at(60),
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": FUNCTION_ARN, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/poll"},
    )
    cfn.delete_stack(StackName="Groups")
    assert settled(cfn, described["StackId"]) == "DELETE_COMPLETE"
    with pytest.raises(ClientError) as raised:
        scheduler.get_schedule_group(Name="image-polling")
    assert error(raised) == ("ResourceNotFoundException", 404)
    assert scheduler.list_schedules()["Schedules"] == []  # deleting a group deletes its schedules


def test_the_scheduler_endpoint_is_in_the_environment_of_functions_and_of_the_kit(local: LocalCloud) -> None:
    assert local.moto is not None
    assert local.moto.env()["AWS_ENDPOINT_URL_SCHEDULER"] == local.moto.url  # what the local Lambda gets
    assert local.env()["AWS_ENDPOINT_URL_SCHEDULER"] == local.moto.url.replace("127.0.0.1", "localhost")
