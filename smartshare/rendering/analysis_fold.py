"""Jinja's constant folding of expressions made of literals, without running anything else.

Jinja's compiler evaluates every expression it can (``as_const``) and fails
where evaluating one raises anything but its own "impossible": ``'a' ~ 'b'.c``
joins an undefined value, ``'x' if 'b'.c else 'y'`` tests one, ``{[1]: 2}``
has a key Python cannot hash.  :class:`LiteralFolder` evaluates the same
expressions as ``as_const`` does, in its order, but from literals only:
tuples, lists, dicts, ``~``, ``a if b else c``, and attributes and items of
those through the sandbox.  So nothing but the template's own text is
computed (no filter, call or operator runs: ``'x' | center(10**9)`` would);
an expression that needs one is left to the render, whose error is as clean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment


class LiteralFolder:
    """Folds the expressions of one template, each node once."""

    def __init__(self, env: ImmutableSandboxedEnvironment) -> None:
        self.env = env
        # id(node) -> its value, _NOT_LITERAL, or how it fails
        self.values: dict[int, Any] = {}

    def failure(self, node: nodes.Expr) -> str | None:
        """Why folding ``node`` fails as the compiler's does, else None."""
        try:
            self._literal(node)
        except _FoldFailure as failure:
            return failure.reason
        return None

    def _literal(self, node: nodes.Node) -> Any:
        """The value Jinja's ``as_const`` gives ``node`` if made of literals, else _NOT_LITERAL.

        Only what cannot compute more than the template's text holds:
        literals, tuples, lists, dicts, ``~``, ``a if b else c``, and
        attributes and items of those through the sandbox.  Raises
        _FoldFailure where ``as_const`` raises (it gives up, rather, on
        everything it cannot compute).
        """
        from jinja2 import nodes as n
        from jinja2.runtime import Undefined

        key = id(node)
        known = self.values.get(key, _UNKNOWN)
        if isinstance(known, _FoldFailure):
            raise known
        if known is not _UNKNOWN:
            return known
        value: Any = _NOT_LITERAL
        try:
            # In as_const's order: it stops at the first part it cannot compute.
            if isinstance(node, n.Const):
                value = node.value
            elif isinstance(node, n.Tuple | n.List):
                items = self._literals(node.items)
                if items is not None:
                    value = tuple(items) if isinstance(node, n.Tuple) else items
            elif isinstance(node, n.Dict):
                mapping: dict[Any, Any] = {}
                for pair in node.items:
                    both = self._literals([pair.key, pair.value])
                    if both is None:
                        break
                    mapping[both[0]] = both[1]
                else:
                    value = mapping
            elif isinstance(node, n.Concat):
                parts = []
                for item in node.nodes:
                    part = self._literal(item)
                    if part is _NOT_LITERAL:
                        break
                    parts.append(str(part))
                else:
                    value = "".join(parts)
            elif isinstance(node, n.CondExpr):
                test = self._literal(node.test)
                if test is not _NOT_LITERAL:
                    if test:
                        value = self._literal(node.expr1)
                    elif node.expr2 is not None:
                        value = self._literal(node.expr2)
            elif isinstance(node, n.Getattr | n.Getitem) and node.ctx == "load":
                owner = self._literal(node.node)
                if owner is not _NOT_LITERAL and not isinstance(owner, Undefined):
                    value = self._lookup(node, owner)
        except _FoldFailure as failure:
            self.values[key] = failure
            raise
        except Exception as exc:  # what folding raises: the compiler's error
            self.values[key] = _FoldFailure(str(exc))
            raise self.values[key] from None
        self.values[key] = value
        return value

    def _literals(self, items: list[nodes.Expr]) -> list[Any] | None:
        """The values of ``items`` in order; None from the first that is no literal."""
        values = []
        for item in items:
            value = self._literal(item)
            if value is _NOT_LITERAL:
                return None
            values.append(value)
        return values

    def _lookup(self, node: nodes.Getattr | nodes.Getitem, owner: Any) -> Any:
        """``owner.attr`` or ``owner[literal]`` through the sandbox (an Undefined if none)."""
        from jinja2 import nodes as n

        try:
            if isinstance(node, n.Getattr):
                return self.env.getattr(owner, node.attr)
            if isinstance(node.arg, n.Const):
                return self.env.getitem(owner, node.arg.value)
            return _NOT_LITERAL
        except Exception:  # as_const gives up there: the error comes when rendering
            return _NOT_LITERAL


class _FoldFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_NOT_LITERAL = object()
_UNKNOWN = object()
