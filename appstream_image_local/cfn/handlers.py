"""How the driver creates, updates and deletes each resource type it knows; the rest are only recorded."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import tempfile
import urllib.error
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.core.exceptions import JsonRESTError

from appstream_image_local.cfn.invoker import DEFAULT_MAX_AGE, DEFAULT_RETRIES, InvokeConfig
from appstream_image_local.cfn.model import ACCOUNT, Live, ResourceFailed, Stack, bucket_location, suffix
from appstream_image_local.cfn.schedules import backend as scheduler_backend
from appstream_image_local.cfn.wait_conditions import WaitConditionHandleHandler, WaitConditionHandler

if TYPE_CHECKING:
    from appstream_image_local.cfn.services import Services

CUSTOM = ("AWS::CloudFormation::CustomResource",)
Made = tuple[str, dict[str, str]]  # physical id and attributes


class ResourceHandler:
    """Records the resource: a generated physical id and an Arn attribute."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        physical_id = f"{stack.name}-{logical_id}-{suffix()}"
        return physical_id, {"Arn": f"arn:aws:local:{stack.region}:{ACCOUNT}:{kind}/{physical_id}"}

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        return live.physical_id, live.attributes

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        return


class CustomResourceHandler(ResourceHandler):
    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        return services.requests.send(stack, "Create", logical_id, kind, props)

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        if str(props.get("ServiceToken", "")) != str(live.properties.get("ServiceToken", "")):
            # AWS::CloudFormation::CustomResource: ServiceToken "Update requires: Updates are not supported".
            raise ResourceFailed("Modifying service token is not allowed.", live.physical_id, untouched=True)
        return services.requests.send(
            stack, "Update", live.logical_id, live.type, props, physical_id=live.physical_id, old_props=live.properties
        )

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        services.requests.send(
            stack, "Delete", live.logical_id, live.type, live.properties, physical_id=live.physical_id
        )


class FunctionHandler(ResourceHandler):
    """AWS::Lambda::Function with Python code from the cloud assembly's asset directory."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        name = str(props.get("FunctionName") or f"{stack.name}-{logical_id}-{suffix()}"[:64])
        return self._register(services, stack, name, props)

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        services.functions.unregister(live.attributes["Arn"])
        return self._register(services, stack, live.physical_id, props)

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        services.functions.unregister(live.attributes.get("Arn", ""))

    @staticmethod
    def _register(services: Services, stack: Stack, name: str, props: dict[str, Any]) -> Made:
        runtime = str(props.get("Runtime", ""))
        if not runtime.startswith("python"):
            raise ResourceFailed(f"the offline Lambda runs Python functions only; {name} has Runtime {runtime!r}")
        function = services.functions.register(
            name,
            _code_dir(services, stack, props),
            str(props["Handler"]),
            services.function_timeout(float(props.get("Timeout", 3))),
            int(props.get("MemorySize", 128)),
            role=str(props.get("Role", "")),
            stack=stack.name,
            environment=_variables(props),
            log_group=str(
                (props.get("LoggingConfig") or {}).get("LogGroup") or ""
            ),  # AWS::Lambda::Function LoggingConfig
        )
        return name, {"Arn": function.arn}


def _code_dir(services: Services, stack: Stack, props: dict[str, Any]) -> Path:
    """The function's code: its zip in the local S3, as Lambda reads it.

    When the driver deploys a cloud assembly itself it plays cdk-assets' part too: an asset that was
    never published is read from its directory beside the template.
    """
    code = props.get("Code", {})
    if "ZipFile" in code:
        raise ResourceFailed("the offline Lambda runs code from S3 or cloud assembly assets, not inline ZipFile code")
    bucket, key = str(code.get("S3Bucket", "")), str(code.get("S3Key", ""))
    if not bucket or not key:
        raise ResourceFailed("Properties validation failed: Code needs S3Bucket and S3Key, or ZipFile")
    try:
        return _unzipped(services.workdir / "code", services.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        s3_error = error.response["Error"]["Code"]
    directory = stack.template.path.parent / f"asset.{key.removesuffix('.zip')}" if stack.template.path else None
    if directory is None or not directory.is_dir():
        # Lambda's CreateFunction error for code it cannot read (InvalidParameterValueException).
        raise ResourceFailed(f"Error occurred while GetObject. S3 Error Code: {s3_error}. S3 Error Message: "
                             f"s3://{bucket}/{key}")  # fmt: skip
    return directory


def _unzipped(cache: Path, body: bytes) -> Path:
    """The zip's files in a directory named after its content (made once)."""
    target = cache / hashlib.sha256(body).hexdigest()[:16]
    if not target.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache))
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            archive.extractall(staging)
        staging.rename(target)
    return target


def _variables(props: dict[str, Any]) -> dict[str, str]:
    """A function's Environment.Variables, and its LoggingConfig as the variables Lambda sets for it."""
    variables = {str(k): str(v) for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()}
    logging_config = props.get("LoggingConfig") or {}
    variables["AWS_LAMBDA_LOG_FORMAT"] = str(logging_config.get("LogFormat", "Text"))
    if logging_config.get("LogFormat") == "JSON":
        variables["AWS_LAMBDA_LOG_LEVEL"] = str(logging_config.get("ApplicationLogLevel", "INFO"))
    return variables


class EventInvokeConfigHandler(ResourceHandler):
    """AWS::Lambda::EventInvokeConfig: the function's asynchronous retries and event age (Lambda enforces them)."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        name = str(props.get("FunctionName", "")).rsplit(":function:", 1)[-1].split(":")[0]
        if str(props.get("Qualifier", "")) != "$LATEST":
            raise ResourceFailed("the offline Lambda runs unpublished functions only: Qualifier must be $LATEST")
        retries = int(props.get("MaximumRetryAttempts", DEFAULT_RETRIES))
        age = float(props.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE))
        if not 0 <= retries <= DEFAULT_RETRIES or not 60 <= age <= DEFAULT_MAX_AGE:  # the resource's ranges
            raise ResourceFailed(
                f"Properties validation failed: MaximumRetryAttempts {retries} must be 0-2 and "
                f"MaximumEventAgeInSeconds {age:.0f} must be 60-21600"
            )
        services.functions.invoker.configs[name] = InvokeConfig(retries, age)
        return f"{name}:$LATEST", {}

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        self.delete(services, stack, live)
        return self.create(services, stack, live.logical_id, live.type, props)

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        services.functions.invoker.configs.pop(live.physical_id.split(":")[0], None)


def _fleet_call(services: Services, path: str, payload: dict[str, Any]) -> None:
    try:
        services.functions.appstream_control(path, payload)
    except urllib.error.HTTPError as err:
        reason = json.loads(err.read() or b"{}").get("message", str(err))
        raise ResourceFailed(f'Resource handler returned message: "{reason}"') from err


class FleetHandler(ResourceHandler):
    """AWS::AppStream::Fleet in the local AppStream service: what makes an image 'in use'."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        name = str(props.get("Name") or f"{stack.name}-{logical_id}")
        # CreateFleet takes only an AVAILABLE image (stricter reading: the exact error AWS answers is not documented).
        payload = {"name": name, "image_name": props.get("ImageName", ""), "require_available": True}
        _fleet_call(services, "/_local/fleets/create", {**payload, "region": stack.region})
        return name, {"Arn": f"arn:aws:appstream:{stack.region}:{ACCOUNT}:fleet/{name}"}

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        # A fleet keeps streaming the old image until its instances recycle, then lets go of it.
        payload = {
            "name": live.physical_id,
            "image_name": props.get("ImageName", ""),
            "after_seconds": services.fleet_switch,
            "require_available": True,
            "region": stack.region,
        }
        _fleet_call(services, "/_local/fleet", payload)
        return live.physical_id, live.attributes

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        payload = {"name": live.physical_id, "region": stack.region}
        services.functions.appstream_control("/_local/fleets/delete", payload)


class RoleHandler(ResourceHandler):
    """AWS::IAM::Role: recorded, with the Arn IAM gives it (its policies are read when functions run)."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        name = str(props.get("RoleName") or f"{stack.name}-{logical_id}-{suffix()}"[:64])
        return name, {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "RoleId": f"AROA{suffix(16)}"}


class BucketHandler(ResourceHandler):
    """AWS::S3::Bucket in moto's S3 (e.g. the CDK bootstrap's staging bucket, where the CLI publishes assets)."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        name = str(props.get("BucketName") or f"{stack.name}-{logical_id}-{suffix()}".lower()[:63])
        try:
            services.s3.create_bucket(Bucket=name, **bucket_location(stack.region))
        except ClientError as error:
            raise ResourceFailed(f"{name} already exists ({error.response['Error']['Code']})") from error
        domain = f"{name}.s3.amazonaws.com"
        regional = f"{name}.s3.{stack.region}.amazonaws.com"
        return name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": domain, "RegionalDomainName": regional}

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        if str(props.get("BucketName") or live.physical_id) != live.physical_id:
            return self.create(services, stack, live.logical_id, live.type, props)  # a new name replaces it
        return live.physical_id, live.attributes

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        try:
            services.s3.delete_bucket(Bucket=live.physical_id)
        except ClientError as error:  # e.g. BucketNotEmpty: CloudFormation's delete fails the same way
            if error.response["Error"]["Code"] != "NoSuchBucket":
                raise ResourceFailed(f"{live.physical_id}: {error.response['Error']['Message']}") from error


class ParameterHandler(ResourceHandler):
    """AWS::SSM::Parameter in moto's SSM (e.g. /cdk-bootstrap/<qualifier>/version, which the CLI reads)."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        name = str(props.get("Name") or f"CFN-{logical_id}-{suffix()}")
        return self._put(services, name, props, overwrite=False)

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        name = str(props.get("Name") or live.physical_id)
        return self._put(services, name, props, overwrite=name == live.physical_id)

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        try:
            services.ssm.delete_parameter(Name=live.physical_id)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ParameterNotFound":
                raise ResourceFailed(error.response["Error"]["Message"]) from error

    @staticmethod
    def _put(services: Services, name: str, props: dict[str, Any], *, overwrite: bool) -> Made:
        kind, value = str(props.get("Type", "String")), str(props.get("Value", ""))
        try:
            services.ssm.put_parameter(Name=name, Value=value, Type=kind, Overwrite=overwrite)
        except ClientError as error:
            raise ResourceFailed(error.response["Error"]["Message"]) from error
        return name, {"Type": kind, "Value": value}


class RepositoryHandler(ResourceHandler):
    """AWS::ECR::Repository in moto's ECR (the CDK bootstrap's container assets repository)."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        name = str(props.get("RepositoryName") or f"{stack.name}-{logical_id}-{suffix()}".lower())
        try:
            made = services.ecr.create_repository(repositoryName=name)["repository"]
        except ClientError as error:
            raise ResourceFailed(error.response["Error"]["Message"]) from error
        return name, {"Arn": made["repositoryArn"], "RepositoryUri": made["repositoryUri"]}

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        try:
            services.ecr.delete_repository(repositoryName=live.physical_id)
        except ClientError as error:
            if error.response["Error"]["Code"] != "RepositoryNotFoundException":
                raise ResourceFailed(error.response["Error"]["Message"]) from error


class ScheduleGroupHandler(ResourceHandler):
    """AWS::Scheduler::ScheduleGroup in moto's EventBridge Scheduler: Ref is its name; Arn, CreationDate,
    LastModificationDate and State are its attributes (CloudFormation user guide: AWS::Scheduler::ScheduleGroup).
    Deleting a group deletes its schedules (EventBridge Scheduler API reference: DeleteScheduleGroup)."""

    def create(self, services: Services, stack: Stack, logical_id: str, kind: str, props: dict[str, Any]) -> Made:
        name = str(props.get("Name") or f"{stack.name}-{logical_id}-{suffix()}"[:64])
        tags = [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in props.get("Tags") or []]
        try:
            group = scheduler_backend(stack.region).create_schedule_group(name, tags)
        except JsonRESTError as error:  # a taken or invalid name (moto_strict)
            raise ResourceFailed(f'Resource handler returned message: "{error.message}"') from error
        return name, self._attributes(group.arn, group.created_on, group.last_modified)

    def update(self, services: Services, stack: Stack, live: Live, props: dict[str, Any]) -> Made:
        if str(props.get("Name") or live.physical_id) != live.physical_id:  # Name: "Update requires: Replacement"
            return self.create(services, stack, live.logical_id, live.type, props)
        try:
            group = scheduler_backend(stack.region).get_schedule_group(live.physical_id)
        except JsonRESTError as error:  # deleted outside the stack
            raise ResourceFailed(f'Resource handler returned message: "{error.message}"', live.physical_id) from error
        tags = [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in props.get("Tags") or []]
        old = [str(t["Key"]) for t in live.properties.get("Tags") or []]
        if old:
            scheduler_backend(stack.region).untag_resource(group.arn, old)
        if tags:
            scheduler_backend(stack.region).tag_resource(group.arn, tags)
        return live.physical_id, self._attributes(group.arn, group.created_on, group.last_modified)

    def delete(self, services: Services, stack: Stack, live: Live) -> None:
        try:
            scheduler_backend(stack.region).delete_schedule_group(live.physical_id)
        except JsonRESTError as error:
            if error.error_type != "ResourceNotFoundException":  # already gone counts as deleted
                raise ResourceFailed(f'Resource handler returned message: "{error.message}"') from error

    @staticmethod
    def _attributes(arn: str, created: float | None, modified: float | None) -> dict[str, str]:
        def stamp(epoch: float | None) -> str:
            return datetime.datetime.fromtimestamp(epoch or 0, datetime.UTC).isoformat()

        return {"Arn": arn, "CreationDate": stamp(created), "LastModificationDate": stamp(modified), "State": "ACTIVE"}


HANDLERS: dict[str, ResourceHandler] = {
    "AWS::S3::Bucket": BucketHandler(),
    "AWS::SSM::Parameter": ParameterHandler(),
    "AWS::ECR::Repository": RepositoryHandler(),
    "AWS::IAM::Role": RoleHandler(),
    "AWS::Lambda::Function": FunctionHandler(),
    "AWS::Lambda::EventInvokeConfig": EventInvokeConfigHandler(),
    "AWS::AppStream::Fleet": FleetHandler(),
    "AWS::Scheduler::ScheduleGroup": ScheduleGroupHandler(),
    "AWS::CloudFormation::WaitConditionHandle": WaitConditionHandleHandler(),  # type: ignore[dict-item]
    "AWS::CloudFormation::WaitCondition": WaitConditionHandler(),  # type: ignore[dict-item]
}


def handler_for(kind: str) -> ResourceHandler:
    if kind.startswith("Custom::") or kind in CUSTOM:
        return CustomResourceHandler()
    return HANDLERS.get(kind, ResourceHandler())
