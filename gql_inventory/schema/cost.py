"""Depth, alias and expanded-size limits of an operation, measured in linear time.

strawberry's `QueryDepthLimiter` and `MaxAliasesLimiter` walk every fragment spread
anew, so fragments that each spread the next twice cost 2**n steps (a 1.5 KB query
blocked the event loop for minutes). Here each fragment is measured once and its
cost memoised, so the work is linear in the document: `DocumentCost.visits` counts
the selections looked at, at most one visit per selection node of the document.

Counts are those of the operation with every fragment spread expanded:

- depth: the longest chain of fields that have a selection set (introspection
  fields, ``__*``, and what is below them do not count), as strawberry counted it;
- aliases: aliased fields;
- selections: fields.

Counts saturate just above their limit, so the numbers stay small however large
the expansion. A spread of a fragment that is being measured (a cycle) counts
nothing here; graphql-core's `NoFragmentCycles` reports the cycle itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)


@dataclass(frozen=True)
class Limits:
    """The bounds of one operation (see the module docstring for what each counts)."""

    max_depth: int
    max_aliases: int
    max_selections: int
    max_merge_pairs: int = 5000


@dataclass(frozen=True)
class Cost:
    """Measured depth, aliases and selections (fields, spreads, inline fragments), expanded."""

    depth: int = 0
    aliases: int = 0
    selections: int = 0


@dataclass
class DocumentCost:
    """Per-operation costs of a document and the number of selection visits it took."""

    operations: dict[str, tuple[OperationDefinitionNode, Cost]] = field(default_factory=dict)
    visits: int = 0


class _Meter:
    def __init__(self, document: DocumentNode, limits: Limits) -> None:
        self.limits = limits
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, Cost] = {}
        self.in_progress: set[str] = set()
        self.visits = 0

    def fragment(self, name: str) -> Cost:
        cached = self.memo.get(name)
        if cached is not None:
            return cached
        if name not in self.fragments or name in self.in_progress:
            return Cost()  # unknown fragment or a cycle: other rules report those
        # Measure the fragments it spreads first, depth first without recursion (a
        # chain of a thousand fragments must not exhaust Python's stack).
        self.in_progress.add(name)
        stack = [(name, iter(self.spreads(name)))]
        while stack:
            current, children = stack[-1]
            for child in children:
                if (
                    child in self.fragments
                    and child not in self.memo
                    and child not in self.in_progress
                ):
                    self.in_progress.add(child)
                    stack.append((child, iter(self.spreads(child))))
                    break
            else:
                stack.pop()
                self.memo[current] = self.selection_set(self.fragments[current].selection_set)
                self.in_progress.discard(current)
        return self.memo[name]

    def spreads(self, name: str) -> list[str]:
        """Names of the fragments `name` spreads directly (anywhere in its selections)."""
        found: list[str] = []
        pending = [self.fragments[name].selection_set]
        while pending:
            for selection in pending.pop().selections:
                self.visits += 1
                if isinstance(selection, FragmentSpreadNode):
                    found.append(selection.name.value)
                elif (
                    isinstance(selection, FieldNode | InlineFragmentNode)
                    and selection.selection_set is not None
                ):
                    pending.append(selection.selection_set)
        return found

    def selection_set(self, selection_set: SelectionSetNode | None) -> Cost:
        depth = aliases = selections = 0
        for selection in selection_set.selections if selection_set else ():
            self.visits += 1
            if isinstance(selection, FieldNode):
                inner = self.selection_set(selection.selection_set)
                introspection = selection.name.value.startswith("__")
                nested = 1 + inner.depth if selection.selection_set and not introspection else 0
                depth = max(depth, nested)
                aliases += inner.aliases + (1 if selection.alias else 0)
                selections += inner.selections + 1
            else:
                if isinstance(selection, FragmentSpreadNode):
                    inner = self.fragment(selection.name.value)
                else:
                    assert isinstance(selection, InlineFragmentNode)
                    inner = self.selection_set(selection.selection_set)
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                selections += inner.selections + 1
            aliases = min(aliases, self.limits.max_aliases + 1)
            selections = min(selections, self.limits.max_selections + 1)
        return Cost(depth, aliases, selections)


def measure(document: DocumentNode, limits: Limits) -> DocumentCost:
    """Cost of each operation of `document` (keyed by name, ``"anonymous"`` if unnamed)."""
    meter = _Meter(document, limits)
    result = DocumentCost()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else "anonymous"
            result.operations[name] = (definition, meter.selection_set(definition.selection_set))
    result.visits = meter.visits
    return result


def merge_pairs(selection_set: SelectionSetNode, document: DocumentNode, cap: int) -> int:
    """Pairs of same-named fields that field-merge validation compares, summed by level.

    graphql-core's `OverlappingFieldsCanBeMergedRule` compares every pair of fields
    with one response name in a selection set (fragments expanded), then their
    sub-selections pair by pair: ``k`` same-named fields cost ``k**2``, nested
    copies multiply. This sums ``k**2`` over the merged levels of the expanded
    operation and stops past `cap`. Call it only on an operation already within
    `max_selections`: it walks the expansion (skipping fragment cycles).
    """
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    total = 0
    Pending = list[tuple[SelectionSetNode, frozenset[str]]]

    def level(sets: Pending) -> None:
        nonlocal total
        groups: dict[str, Pending] = {}
        while sets:
            selection_set, inside = sets.pop()
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    name = (selection.alias or selection.name).value
                    group = groups.setdefault(name, [])
                    if selection.selection_set is not None:
                        group.append((selection.selection_set, inside))
                    else:
                        group.append((SelectionSetNode(selections=()), inside))
                elif isinstance(selection, InlineFragmentNode):
                    sets.append((selection.selection_set, inside))
                elif isinstance(selection, FragmentSpreadNode):
                    spread = selection.name.value
                    if spread in fragments and spread not in inside:
                        sets.append((fragments[spread].selection_set, inside | {spread}))
        for group in groups.values():
            total += len(group) ** 2
            if total > cap:
                return
            level([entry for entry in group if entry[0].selections])
            if total > cap:
                return

    level([(selection_set, frozenset())])
    return total


def cost_errors(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """One error per limit an operation passes (code ``QUERY_TOO_COMPLEX``).

    Linear in the document: run it before graphql-core's validation, whose
    field-merge rule is quadratic (`merge_pairs`).
    """
    errors: list[GraphQLError] = []

    def refuse(message: str, node: OperationDefinitionNode) -> None:
        errors.append(GraphQLError(message, node, extensions={"code": "QUERY_TOO_COMPLEX"}))

    for name, (node, cost) in measure(document, limits).operations.items():
        if cost.depth > limits.max_depth:
            refuse(f"'{name}' exceeds maximum operation depth of {limits.max_depth}", node)
        if cost.aliases > limits.max_aliases:
            refuse(f"'{name}': more than {limits.max_aliases} aliases found", node)
        if cost.selections > limits.max_selections:
            refuse(
                f"'{name}' has more than {limits.max_selections} selections "
                "once its fragments are expanded",
                node,
            )
        elif merge_pairs(node.selection_set, document, limits.max_merge_pairs) > (
            limits.max_merge_pairs
        ):
            refuse(
                f"'{name}' repeats fields too often: more than {limits.max_merge_pairs} "
                "pairs of same-named fields to compare once its fragments are expanded",
                node,
            )
    return errors


__all__ = ["Cost", "DocumentCost", "Limits", "cost_errors", "measure"]
