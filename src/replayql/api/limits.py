"""What one GraphQL request may ask, checked before it runs: field depth, aliases, and an estimate of the
objects it can return (the product of the page sizes along each path). Each refusal names its limit's code.

The walk follows the schema's types through fragments, so `first` and `limit` defaults come from the schema
itself and a variable counts with the value it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    Visitor,
    get_named_type,
    value_from_ast,
    visit,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

from replayql.config import QueryLimits

_PAGE_ARGS = ("first", "limit")  # arguments that say how many objects a list field returns


@dataclass(frozen=True)
class LimitExceeded:
    code: str
    message: str


@dataclass
class _Walk:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    limits: QueryLimits
    aliases: int = 0
    found: LimitExceeded | None = None


def check_limits(schema: GraphQLSchema, operation: OperationDefinitionNode,
                 fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any],
                 limits: QueryLimits) -> LimitExceeded | None:
    """The first limit the operation passes, or None."""
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    walk = _Walk(schema, fragments, variables, limits)
    _selections(walk, operation.selection_set, root, "", 1, 1, frozenset())
    return walk.found


def _selections(walk: _Walk, selection_set: SelectionSetNode, parent: GraphQLNamedType, path: str, depth: int,
                estimate: int, spread: frozenset[str]) -> None:
    for selection in selection_set.selections:
        if walk.found is not None:
            return
        if isinstance(selection, FieldNode):
            _field(walk, selection, parent, path, depth, estimate, spread)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            inner = walk.schema.get_type(condition.name.value) if condition else parent
            _selections(walk, selection.selection_set, inner or parent, path, depth, estimate, spread)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = walk.fragments.get(name)
            if fragment is None or name in spread:  # validation has refused cycles; this guards anyway
                continue
            inner = walk.schema.get_type(fragment.type_condition.name.value) or parent
            _selections(walk, fragment.selection_set, inner, path, depth, estimate, spread | {name})


def _field(walk: _Walk, node: FieldNode, parent: GraphQLNamedType, path: str, depth: int, estimate: int,
           spread: frozenset[str]) -> None:
    limits = walk.limits
    name = node.name.value
    here = f"{path}.{node.alias.value if node.alias else name}".lstrip(".")
    if node.alias is not None:
        walk.aliases += 1
        if walk.aliases > limits.max_aliases:
            walk.found = LimitExceeded("TOO_MANY_ALIASES", f"the query uses more than {limits.max_aliases} "
                                                           "aliases; split it into several requests")
            return
    if depth > limits.max_depth:
        walk.found = LimitExceeded("QUERY_TOO_DEEP", f"`{here}` is nested {depth} fields deep; the limit is "
                                                     f"{limits.max_depth}")
        return
    definition = _definition(parent, name)
    if definition is None or node.selection_set is None:
        return
    estimate *= _page_size(walk, node, definition)
    if estimate > limits.max_results:
        walk.found = LimitExceeded(
            "QUERY_TOO_COMPLEX", f"`{here}` could return up to {estimate:,} objects (the product of the page sizes "
                                 f"along it); the limit is {limits.max_results:,}: ask for smaller pages")
        return
    _selections(walk, node.selection_set, get_named_type(definition.type), here, depth + 1, estimate, spread)


def _definition(parent: GraphQLNamedType, name: str) -> Any:
    if name == "__schema":
        return SchemaMetaFieldDef
    if name == "__type":
        return TypeMetaFieldDef
    fields = getattr(parent, "fields", None)  # objects and interfaces; a union is entered by type conditions
    return fields.get(name) if fields else None


def _page_size(walk: _Walk, node: FieldNode, definition: Any) -> int:
    """How many objects the field returns at most: its `first`/`limit` (given or default); 1 for other fields
    (a connection's `nodes` and `edges` are counted by the connection's `first`)."""
    for arg_name in _PAGE_ARGS:
        argument = definition.args.get(arg_name)
        if argument is None:
            continue
        given = next((a.value for a in node.arguments or () if a.name.value == arg_name), None)
        value = value_from_ast(given, argument.type, walk.variables) if given is not None else argument.default_value
        return value if isinstance(value, int) and value > 0 else 1
    return 1


def literal_shape(document: DocumentNode) -> tuple[int, int]:
    """The deepest nesting of the object and list values written in the document, and how many values they
    hold (visit() is iterative)."""
    class Depth(Visitor):
        current = deepest = values = 0

        def enter(self, node: Node, *_: Any) -> None:
            if isinstance(node, ValueNode):
                self.values += 1
            if isinstance(node, ObjectValueNode | ListValueNode):
                self.current += 1
                self.deepest = max(self.deepest, self.current)

        def leave(self, node: Node, *_: Any) -> None:
            if isinstance(node, ObjectValueNode | ListValueNode):
                self.current -= 1

    counter = Depth()
    visit(document, counter)
    return counter.deepest, counter.values


def json_shape(value: Any) -> tuple[int, int]:
    """The nesting depth of decoded JSON and how many values it holds, without recursion."""
    deepest, values, stack = 0, 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        values += 1
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest, values
