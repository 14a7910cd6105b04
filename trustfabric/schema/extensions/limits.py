"""A cost limit: the work a query asks for, estimated from its shape before it runs.

Each field costs 1; a list field multiplies what is under it by its `first` argument when
given as a literal, else by a default fan-out. Depth, alias and token limits come from
Strawberry's own extensions; graphql-core has no cost analysis, hence this rule.

Before any rule, a document's size with its fragments spread is bounded
(`check_expansion`): the depth and alias limiters and the cost rule each walk every spread
again, so `fragment F0{...F1 ...F1}` nested 30 deep, under 1 KB, would cost them 2^30 steps.
"""

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    get_nullable_type,
    is_list_type,
)

DEFAULT_FAN_OUT = 10
MAX_PAGE = 100  # the largest `first` any listing accepts
# The most jobs a page of PSI jobs filtered by status looks at (decision 0028).
MAX_EXAMINED = 5_000


def cost_limit_rule(max_cost: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments = {f.name.value: f for f in context.document.definitions
                              if isinstance(f, FragmentDefinitionNode)}

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            root = self.context.schema.get_root_type(node.operation)
            cost = self._cost(node.selection_set, root, set())
            if cost > max_cost:
                self.report_error(GraphQLError(
                    f"query cost {cost} exceeds the limit of {max_cost}; ask for fewer items",
                    node, extensions={"code": "BAD_USER_INPUT", "cost": cost},
                ))

        def _cost(self, selections: SelectionSetNode | None, parent: Any, seen: set[str]) -> int:
            if selections is None or parent is None:
                return 0
            total = 0
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    field = getattr(parent, "fields", {}).get(selection.name.value)
                    if field is None:
                        continue
                    child = get_named_type(field.type)
                    fan_out = 1
                    if child.name.endswith("Connection") or is_list_type(get_nullable_type(field.type)) and not parent.name.endswith(
                        "Connection"  # a connection's edges are the page its `first` sized
                    ):
                        fan_out = DEFAULT_FAN_OUT
                    for argument in selection.arguments or ():
                        if argument.name.value == "first":
                            # a variable may carry up to the page maximum; a literal counts
                            # as given, within 1 and that maximum
                            fan_out = MAX_PAGE
                            if isinstance(argument.value, IntValueNode):
                                fan_out = min(max(int(argument.value.value), 1), MAX_PAGE)
                    total += 1 + fan_out * self._cost(selection.selection_set, child, seen)
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    target = self.context.schema.get_type(condition.name.value) if condition else parent
                    total += self._cost(selection.selection_set, target, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or name in seen:
                        continue
                    target = self.context.schema.get_type(fragment.type_condition.name.value)
                    total += self._cost(fragment.selection_set, target, seen | {name})
            return total

    return CostLimit


def check_expansion(document: DocumentNode, limit: int) -> None:
    """Refuse a document whose operations, with every fragment spread in place, hold more
    than `limit` selections. Counted with each fragment's size computed once, so the count
    itself is linear in the document. The cost limit is the natural bound: each field
    costs at least 1, so a document larger than it expanded could never pass that rule."""
    fragments = {f.name.value: f for f in document.definitions
                 if isinstance(f, FragmentDefinitionNode)}
    sizes: dict[str, int] = {}

    def size(selections: SelectionSetNode | None, within: frozenset[str]) -> int:
        total = 0
        for selection in selections.selections if selections else ():
            total += 1
            if isinstance(selection, FragmentSpreadNode):
                total += fragment_size(selection.name.value, within)
            elif isinstance(selection, FieldNode | InlineFragmentNode):
                total += size(selection.selection_set, within)
            if total > limit:  # no need to count further
                break
        return total

    def fragment_size(name: str, within: frozenset[str]) -> int:
        if name not in sizes:
            fragment = fragments.get(name)
            if fragment is None or name in within:
                return 0  # unknown or a cycle: GraphQL's own rules say so, once
            sizes[name] = size(fragment.selection_set, within | {name})
        return sizes[name]

    total = 0
    for operation in document.definitions:
        if isinstance(operation, OperationDefinitionNode):
            total += size(operation.selection_set, frozenset())
        if total > limit:
            raise GraphQLError(
                f"the document holds more than {limit} selections with its fragments "
                "spread; ask for fewer", extensions={"code": "GRAPHQL_VALIDATION_FAILED"})
