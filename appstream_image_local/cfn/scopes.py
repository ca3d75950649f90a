"""A stack's parameters (checked as CloudFormation checks them), its Rules, the scope its intrinsics
resolve in (pseudo parameters, Refs, GetAtts, exports, conditions), and its outputs and exports.
The engine (driver.Cloud) mixes this in."""

from __future__ import annotations

from typing import Any

import regex
from botocore.exceptions import ClientError

from appstream_image_local.cfn.intrinsics import Scope, evaluate, resolve
from appstream_image_local.cfn.model import ACCOUNT, Stack
from appstream_image_local.cfn.template import Template, TemplateError


class Scopes:
    ssm: Any
    exports: dict[str, str]
    region: str

    def parameters(self, template: Template, given: dict[str, str]) -> dict[str, str]:
        """The template's parameter values: given or default, checked, SSM parameter types resolved."""
        values: dict[str, str] = {}
        for name, spec in template.body.get("Parameters", {}).items():
            if name in given:
                values[name] = given[name]
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no value and no default")
            value = values[name]
            pattern = spec.get("AllowedPattern")
            if pattern and not regex.fullmatch(pattern, value):  # Java's classes, as CloudFormation reads them
                raise TemplateError(f"parameter {name}: {value!r} does not match {pattern}")
            if not int(spec.get("MinLength", 0)) <= len(value) <= int(spec.get("MaxLength", 4096)):
                raise TemplateError(f"parameter {name}: {value!r} is not {spec.get('MinLength', 0)}-"
                                    f"{spec.get('MaxLength', 4096)} characters long")  # fmt: skip
            if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
                raise TemplateError(f"parameter {name}: {value!r} is not one of {spec['AllowedValues']}")
        unknown = set(given) - set(values)
        if unknown:
            raise TemplateError(f"Parameters: {sorted(unknown)} do not exist in the template")
        for name, spec in template.body.get("Parameters", {}).items():
            if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value<"):
                try:
                    values[name] = self.ssm.get_parameter(Name=values[name])["Parameter"]["Value"]
                except ClientError as error:
                    raise TemplateError(f"Unable to fetch parameters [{values[name]}] from parameter store for "
                                        "this account.") from error  # fmt: skip
        return values

    def check_rules(self, name: str, template: Template, parameters: dict[str, str]) -> None:
        """The template's Rules (e.g. the CDK's bootstrap version check) hold, or TemplateError."""
        scope = self._scope(Stack(name, "", template, parameters=parameters))
        for rule in template.body.get("Rules", {}).values():
            if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], scope):
                continue
            for assertion in rule.get("Assertions", []):
                if not evaluate(assertion["Assert"], scope):
                    raise TemplateError(str(assertion.get("AssertDescription", "a template rule failed")))

    def _scope(self, stack: Stack) -> Scope:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
            "AWS::StackId": stack.stack_id,
        }

        def attribute(logical_id: str, name: str) -> str:
            live = stack.resources.get(logical_id)
            if live is None:
                raise TemplateError(f"Fn::GetAtt {logical_id}.{name}: {logical_id} does not exist (yet)")
            if name not in live.attributes:
                raise TemplateError(f"Fn::GetAtt {logical_id}.{name}: the resource has no attribute {name}")
            return live.attributes[name]

        return Scope(
            pseudo,
            dict(stack.parameters),
            {lid: live.physical_id for lid, live in stack.resources.items()},
            attribute,
            self.exports,
            stack.conditions,
        )

    def _outputs(self, stack: Stack, template: Template) -> None:
        scope = self._scope(stack)
        exported: dict[str, str] = {}
        stack.outputs = {}
        for name, output in template.body.get("Outputs", {}).items():
            value = str(resolve(output["Value"], scope))
            stack.outputs[name] = value
            if "Export" in output:
                export = str(resolve(output["Export"]["Name"], scope))
                self.exports[export] = value
                exported[name] = export
        for export in set(stack.exports.values()) - set(exported.values()):
            self.exports.pop(export, None)
        stack.exports = exported
