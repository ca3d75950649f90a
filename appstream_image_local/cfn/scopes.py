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
    stacks: dict[str, Stack]

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

    def _evaluated_outputs(self, stack: Stack, template: Template) -> tuple[dict[str, str], dict[str, str]]:
        """The template's outputs (key -> value) and exports (key -> export name), resolved in the stack's scope."""
        scope = self._scope(stack)
        outputs: dict[str, str] = {}
        exported: dict[str, str] = {}
        for name, output in template.body.get("Outputs", {}).items():
            outputs[name] = str(resolve(output["Value"], scope))
            if "Export" in output:
                exported[name] = str(resolve(output["Export"]["Name"], scope))
        return outputs, exported

    def _outputs(self, stack: Stack, template: Template) -> None:
        outputs, exported = self._evaluated_outputs(stack, template)
        for name, export in exported.items():
            self.exports[export] = outputs[name]
        for export in set(stack.exports.values()) - set(exported.values()):
            self.exports.pop(export, None)
        stack.outputs, stack.exports = outputs, exported

    def importers(self, export: str, but: str = "") -> list[str]:
        """The stacks of this region, other than `but`, whose template imports `export` (Fn::ImportValue of a
        literal name: how the CDK writes a cross-stack reference)."""
        return sorted(name for name, stack in self.stacks.items() if name != but and export in _imports(stack.template))

    def exports_in_use(self, stack: Stack, template: Template | None) -> str:
        """Why `template`'s outputs (None: none, the stack is deleted) cannot replace the stack's ("" when they can).

        User guide, Outputs: "After another stack imports an output value, you can't delete the stack that is
        exporting the output value or modify the exported output value." The messages are AWS's."""
        outputs, exported = self._evaluated_outputs(stack, template) if template is not None else ({}, {})
        new = {export: outputs[key] for key, export in exported.items()}
        for key, export in sorted(stack.exports.items()):
            users = self.importers(export, but=stack.name)
            if users and export not in new:
                return f"Export {export} cannot be deleted as it is in use by {users[0]}"
            if users and new[export] != stack.outputs.get(key):
                return f"Export {export} cannot be updated as it is in use by {users[0]}"
        return ""

    def exports_taken(self, stack: Stack, template: Template) -> str:
        """Why `template`'s exports cannot be made ("" when they can): another stack of this region exports one of the
        names. User guide, Outputs: "For each AWS account, Export names must be unique within a region."; the
        message is AWS's."""
        _, exported = self._evaluated_outputs(stack, template)
        for export in sorted(set(exported.values())):
            owner = next((s.name for s in self.stacks.values() if s is not stack and export in s.exports.values()), "")
            if owner:
                return f"Export with name {export} is already exported by stack {owner}"
        return ""


def _imports(template: Template) -> set[str]:
    """The export names a template imports with a literal Fn::ImportValue."""
    found: set[str] = set()
    pending: list[Any] = [template.body]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("Fn::ImportValue"), str):
                found.add(node["Fn::ImportValue"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
