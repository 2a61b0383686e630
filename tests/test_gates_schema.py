"""Tool schemas typed exactly in Cedar, schema composition that a fragment cannot bend, and
policy sets refused before they can become active (missing or duplicate @id, invalid)."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from tests.support.gates import POLICIES, TOOLS
from troth import limits
from troth.errors import PolicyError, PolicyFailure
from troth.gates import compile_policies, compile_tool_schema, schema_from_function

P = PolicyFailure
REFUND = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "description": "the order"},
        "amount": {"type": "integer", "title": "Amount"},
        "note": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "express": {"type": "boolean", "default": False},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
    },
    "required": ["order_id", "amount"],
    "$schema": "https://json-schema.org/draft/2020-12/schema",
}


def refused(reason: PolicyFailure, call: Any, *args: Any) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        call(*args)
    assert caught.value.reason is reason, caught.value
    return caught.value


def test_json_schema_maps_to_an_exact_cedar_record() -> None:
    spec = compile_tool_schema("refund", REFUND)
    assert spec.cedar_args == (
        '{ "address"?: { "city": __cedar::String }, "amount": __cedar::Long, '
        '"currency"?: __cedar::String, "express"?: __cedar::Bool, "note"?: __cedar::String, '
        '"order_id": __cedar::String, "tags"?: Set<__cedar::String> }'
    )
    assert spec.check is not None  # the enum is checked by troth (Cedar has no string enums)
    assert spec.check({"currency": "EUR"})
    assert not spec.check({"currency": "GBP"})
    assert compile_tool_schema("ping", {"type": "object"}).cedar_args == "{}"


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "number"}, "integer units"),
        ({"type": ["string", "null"]}, "not supported"),
        ({"type": "null"}, "not supported"),
        ({}, "no type"),
        ({"type": "string", "maxLength": 3}, "maxLength"),
        ({"type": "integer", "minimum": 0}, "minimum"),
        ({"type": "string", "format": "date-time"}, "format"),
        ({"type": "string", "pattern": "^a"}, "pattern"),
        ({"anyOf": [{"type": "string"}]}, "no type"),
        ({"$ref": "#/defs/x"}, "no type"),
        ({"type": "array"}, "items"),
        ({"type": "object", "additionalProperties": True}, "additionalProperties"),
        ({"type": "object", "patternProperties": {}}, "patternProperties"),
        ({"type": "object", "properties": {}, "required": ["x"]}, "required"),
        ({"type": "string", "enum": []}, "enum"),
        ({"type": "string", "enum": ["a", 1]}, "enum"),
        ({"type": "integer", "enum": [True]}, "enum"),
    ],
)
def test_unsupported_schema_features_are_refused_with_where(
    schema: dict[str, Any], fragment: str
) -> None:
    tool = {"type": "object", "properties": {"x": schema}}
    error = refused(P.SCHEMA_INVALID, compile_tool_schema, "t", tool)
    assert fragment in str(error)
    assert "t:x." in str(error) or "t:x" in str(error)


@pytest.mark.parametrize("name", ["__entity", "a b", 'a"', "", "é", "x" * 65])
def test_argument_names_that_could_escape_are_refused(name: str) -> None:
    refused(
        P.SCHEMA_INVALID,
        compile_tool_schema,
        "t",
        {"type": "object", "properties": {name: {"type": "string"}}},
    )


@pytest.mark.parametrize("name", ['a"b', "a b", "", "x" * (limits.MAX_TOOL_NAME + 1), "a/b"])
def test_tool_names_outside_the_mcp_charset_are_refused(name: str) -> None:
    refused(P.SCHEMA_INVALID, compile_tool_schema, name, {"type": "object"})


def test_non_object_and_over_deep_schemas_are_refused() -> None:
    refused(P.SCHEMA_INVALID, compile_tool_schema, "t", {"type": "string"})
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(limits.MAX_TOOL_SCHEMA_DEPTH):
        deep = {"type": "object", "properties": {"a": deep}}
    assert "deeper" in str(refused(P.SCHEMA_INVALID, compile_tool_schema, "t", deep))


def test_omitted_arguments_are_filled_with_their_defaults_nested_too() -> None:
    spec = compile_tool_schema("refund", REFUND)
    assert spec.fill is not None
    assert spec.fill({"order_id": "o1", "amount": 5}) == {
        "order_id": "o1",
        "amount": 5,
        "express": False,
    }
    assert spec.fill({"express": True})["express"] is True  # what is sent stays
    nested = {
        "type": "object",
        "properties": {
            "to": {
                "type": "object",
                "properties": {"fmt": {"type": "string", "default": "csv"}},
            },
            "many": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "default": 1}},
                },
            },
        },
    }
    fill = compile_tool_schema("t", nested).fill
    assert fill is not None
    assert fill({"to": {}, "many": [{}, {"n": 2}]}) == {
        "to": {"fmt": "csv"},
        "many": [{"n": 1}, {"n": 2}],
    }
    assert compile_tool_schema("ping", {"type": "object"}).fill is None


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "string", "default": 1},
        {"type": "integer", "default": True},
        {"type": "integer", "enum": [1, 2], "default": 3},
        {"type": "string", "enum": ["a", "b"], "default": "c"},
        {"type": "array", "items": {"type": "integer"}, "default": "x"},
    ],
)
def test_a_default_that_does_not_conform_is_refused(prop: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"p": prop}}
    assert "default" in str(refused(P.SCHEMA_INVALID, compile_tool_schema, "t", schema))


def test_a_default_is_part_of_the_shape() -> None:
    csv = {"type": "object", "properties": {"fmt": {"type": "string", "default": "csv"}}}
    json = {"type": "object", "properties": {"fmt": {"type": "string", "default": "json"}}}
    assert compile_tool_schema("t", csv).shape != compile_tool_schema("t", json).shape


def test_integers_past_i_json_are_refused() -> None:
    spec = compile_tool_schema("refund", REFUND)
    assert spec.check is not None
    for amount in (2**53 - 1, -(2**53) + 1):
        assert spec.check({"amount": amount})
    for amount in (2**53, -(2**53), 2**63):
        assert not spec.check({"amount": amount})
    enum = {"type": "object", "properties": {"n": {"type": "integer", "enum": [2**53]}}}
    refused(P.SCHEMA_INVALID, compile_tool_schema, "t", enum)


def test_schema_from_a_typed_function() -> None:
    def tool(
        order_id: str,
        amount: int,
        express: bool = False,
        kind: Literal["full", "part"] = "full",
        codes: list[int] | None = None,
        *,
        lease: object = None,
    ) -> None:
        """A tool."""

    assert schema_from_function(tool) == {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "amount": {"type": "integer"},
            "express": {"type": "boolean", "default": False},
            "kind": {"type": "string", "enum": ["full", "part"], "default": "full"},
            "codes": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["order_id", "amount"],
    }


def test_untyped_or_float_parameters_are_refused() -> None:
    def floats(x: float) -> None: ...

    def untyped(x) -> None:  # type: ignore[no-untyped-def]
        ...

    def star(*args: int) -> None: ...

    assert "float" in str(refused(P.SCHEMA_INVALID, schema_from_function, floats))
    refused(P.SCHEMA_INVALID, schema_from_function, untyped)
    refused(P.SCHEMA_INVALID, schema_from_function, star)


# -- composition and policy sets ---------------------------------------------------------------


def test_the_demo_bundle_compiles_with_its_ids() -> None:
    compiled = compile_policies(POLICIES, "", TOOLS, {"orders": ["status"]})
    assert compiled.policy_ids == ("lookup", "refund", "refund-cap", "export")
    assert 'action "invoke:refund" in [Action::"invoke"]' in compiled.schema_text
    assert 'action "status" appliesTo' in compiled.schema_text
    assert compiled.services == {"orders": frozenset({"status"})}


@pytest.mark.parametrize(
    "fragment",
    [
        "type Agent = String;",  # retypes every Agent attribute: caught by the probe
        "entity Agent;",  # declared twice
        "entity Tool in [Agent];",
        "action invoke;",
        "action lease;",
        'action "invoke:refund" appliesTo { principal: [Agent], resource: [Tool] };',
        "namespace X { entity Agent; }",  # shadows
        "type Long = String;",  # reserved
        "entity {",  # does not parse
    ],
)
def test_a_fragment_cannot_change_the_fixed_declarations(fragment: str) -> None:
    refused(P.SCHEMA_INVALID, compile_policies, POLICIES, fragment, TOOLS)


def test_a_fragment_may_add_declarations_that_builtins_shrug_off() -> None:
    # `entity Long;` would retype `now: Long`, but troth names builtins as __cedar::Long
    fragment = "entity Long; entity Order { total: __cedar::Long };"
    policy = '@id("p") permit(principal, action, resource) when { context.now > 0 };'
    assert compile_policies(policy, fragment, TOOLS).policy_ids == ("p",)


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ("permit(principal, action, resource);", "no @id"),
        ('@id("") permit(principal, action, resource);', "no @id"),
        (
            '@id("a") permit(principal, action, resource);\n'
            '@id("a") forbid(principal, action, resource);',
            "twice",
        ),
        ('@id("policy0") permit(principal, action, resource);', "positional"),
        ('@id("caveat:0:0") permit(principal, action, resource);', "reserved"),
        ('@id("a b") permit(principal, action, resource);', "[A-Za-z0-9"),
    ],
)
def test_every_policy_needs_a_unique_plain_id(policies: str, message: str) -> None:
    error = refused(P.POLICIES_INVALID, compile_policies, policies, "", TOOLS)
    assert message in str(error) or any(message in m for m in error.messages)


def test_an_invalid_policy_set_is_refused_with_the_validators_messages() -> None:
    policies = (
        '@id("ok") permit(principal, action == Action::"invoke:lookup_order", resource);\n'
        '@id("typo") permit(principal, action == Action::"invoke:refund", resource)\n'
        '  when { context.args.amount == "20" };\n'
        '@id("unguarded") forbid(principal, action, resource)\n'
        '  when { principal.getTag("orders.access").contains("x") };\n'
        '@id("nope") permit(principal, action == Action::"delete", resource);'
    )
    error = refused(P.POLICIES_INVALID, compile_policies, policies, "", TOOLS)
    ids = {m.split("]")[0] + "]" for m in error.messages}
    assert ids == {"[typo]", "[unguarded]", "[nope]"}
    assert all("policy1" not in m for m in error.messages)  # positional ids mapped to @ids


def test_templates_and_parse_errors_are_refused() -> None:
    template = '@id("t") permit(principal == ?principal, action, resource);'
    assert "templates" in str(refused(P.POLICIES_INVALID, compile_policies, template, "", TOOLS))
    refused(P.POLICIES_INVALID, compile_policies, "permit(principal", "", TOOLS)


def test_reserved_or_bad_service_methods_are_refused() -> None:
    bad: list[dict[str, list[str]]] = [
        {"orders": ["invoke"]},
        {"orders": ["lease"]},
        {"orders": []},
        {"a b": ["x"]},
    ]
    for services in bad:
        with pytest.raises(PolicyError):
            compile_policies("", "", {}, services)


def test_limits_on_sizes_and_counts() -> None:
    refused(P.OVER_LIMIT, compile_policies, " " * (limits.MAX_POLICY_TEXT + 1), "", {})
    tools = {f"t{i}": {"type": "object"} for i in range(limits.MAX_TOOLS + 1)}
    refused(P.OVER_LIMIT, compile_policies, "", "", tools)
    many = "".join(
        f'@id("p{i}") permit(principal, action, resource);\n'
        for i in range(limits.MAX_POLICIES + 1)
    )
    refused(P.OVER_LIMIT, compile_policies, many, "", {})


def test_a_refusal_keeps_a_bounded_number_of_cut_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most MAX_POLICY_MESSAGES messages, each cut to MAX_POLICY_MESSAGE_TEXT characters,
    and the count of the others (review 25, gates 1-2)."""
    monkeypatch.setattr(limits, "MAX_POLICY_MESSAGES", 2)
    monkeypatch.setattr(limits, "MAX_POLICY_MESSAGE_TEXT", 30)
    policies = "".join(
        f'@id("p{j}") permit(principal, action, resource) when {{ context.missing{j} }};\n'
        for j in range(5)
    )
    error = refused(P.POLICIES_INVALID, compile_policies, policies, "", TOOLS)
    assert len(error.messages) == 3
    assert all(m.endswith(" more characters)") for m in error.messages[:2])
    assert all(len(m) < 30 + 40 for m in error.messages[:2])
    assert error.messages[2].startswith("... and ")
