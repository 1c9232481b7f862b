"""The one walk over a parsed template: what it uses, and what Jinja's compiler would refuse.

:class:`Walker` visits the nodes in the order Jinja's code generator does,
keeping what the generator knows of each scope, so that the first mistake
the compiler would raise (an unknown filter, a block defined twice...) is
found without generating code; on the way it collects what the checks need
(:class:`smartshare.rendering.analysis_data.Parsed`).
"""

from __future__ import annotations

import functools
from keyword import iskeyword
from typing import TYPE_CHECKING, Any

from smartshare.rendering.analysis_data import Parsed, Reference, reference_of
from smartshare.rendering.analysis_fold import LiteralFolder
from smartshare.rendering.sandbox import CONTEXT_NAMES

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

_DICT_METHODS = frozenset({"get", "items", "keys", "values"})


def _record(table: dict[str, int], key: str, line: int) -> None:
    if key not in table or line < table[key]:
        table[key] = line


class Walker:
    """One pass over a parsed template, in the order Jinja's compiler visits it.

    Besides what the checks use (collected from every node), it finds what the
    compiler would refuse (``TemplateAssertionError``) with the compiler's
    message; when there are several, the one the compiler meets first.  So
    the walk follows the compiler's order and keeps what the compiler knows
    of each scope (its ``Frame``):

    - the *phase*: a block defined twice is refused before anything else,
      then the top level is compiled, then each block's body (in the order of
      the blocks in the file) as a function of its own;
    - *soft*: inside ``{% if %}`` and ``a if b else c`` an unknown filter or
      test fails only if it runs, so it is no error there (loops, macros,
      ``{% with %}``... inside are strict again);
    - the *top level* (and *root level*): ``{% extends %}`` is allowed at the
      top level only (``{% if %}`` included); once one is met at the root,
      output outside blocks is never compiled, and a second one ends the
      compilation of the statements after it;
    - *implicit* names: what Jinja defines in a scope without a ``set``:
      ``loop`` in a loop's body, ``caller``/``varargs``/``kwargs`` in a
      macro's or call block's, ``super`` in a block's, ``self`` everywhere.

    The compiler also evaluates expressions made of literals (constant
    folding), and fails where one fails (``'a' ~ 'b'.c``: a string has no
    attribute ``c``, and joining an undefined value raises): the walk folds
    ``~`` and ``a if b else c`` expressions as it does, with
    :class:`.analysis_fold.LiteralFolder`.
    """

    def __init__(self, env: ImmutableSandboxedEnvironment, *, extends: bool) -> None:
        from jinja2 import nodes as n

        self.name_type: type[nodes.Name] = n.Name
        self.getattr_type: type[nodes.Getattr] = n.Getattr
        self.getitem_type: type[nodes.Getitem] = n.Getitem
        self.const_type: type[nodes.Const] = n.Const
        self.filters = env.filters
        self.tests = env.tests
        self.allowed = CONTEXT_NAMES | env.globals.keys()
        # what the checks use
        self.params: dict[str, int] = {}
        self.whole: list[int] = []
        self.region_fields: dict[str, int] = {}
        self.app_fields: dict[str, int] = {}
        self.asset_fields: dict[str, int] = {}
        # `requires.<app>` as "<app>", `requires.<app>.<output>` as "<app>.<output>":
        # checked against the catalogue (the required app's outputs), not here.
        self.requires_fields: dict[str, int] = {}
        # The context names whose fields are recorded.
        self.fields = {
            "region": self.region_fields,
            "app": self.app_fields,
            "assets": self.asset_fields,
            "requires": self.requires_fields,
        }
        self.loads: dict[str, int] = {}
        self.stored: set[str] = set()
        self.references: list[Reference] = []
        # what the compiler would refuse: (phase, block number, order), line, message
        self.failures: list[tuple[tuple[int, int, int], int, str]] = []
        self.order = 0
        self.checking = True  # False where the compiler skips what it walks past
        self.exited = False  # a second {% extends %} ended the statement list
        self.blocks: set[str] = set()
        self.block_count = 0
        self.block = 0  # 0: the top level, else the number of the block being walked
        self.known_extends = False
        self.extends_seen = 0
        # Loops being walked, and whether the compiler checks them: a `loop`
        # assigned anywhere inside one fails at that loop.
        self.loops: list[tuple[tuple[int, int, int], nodes.For, bool]] = []
        self.loop_failures: dict[tuple[int, int, int], nodes.For] = {}
        # Inside a scope the compiler never enters (after a second extends):
        # its names are not looked up, so none is undefined.
        self.unentered = False
        # the scope (Jinja's Frame)
        self.soft = False
        self.toplevel = self.rootlevel = True
        self.output_check = extends
        self.implicit: frozenset[str] = _ROOT_IMPLICIT
        self.depth = 0
        self.max_depth = 0
        self.handlers = _handlers()
        self.folder = LiteralFolder(env)

    # -- results ---------------------------------------------------------------------------

    def result(self) -> Parsed:
        return Parsed(
            params=tuple(sorted(self.params.items())),
            whole=tuple(sorted(set(self.whole))),
            region_fields=tuple(sorted(self.region_fields.items())),
            app_fields=tuple(sorted(self.app_fields.items())),
            asset_fields=tuple(sorted(self.asset_fields.items())),
            requires_fields=tuple(sorted(self.requires_fields.items())),
            undeclared=tuple(sorted(self.loads.items())),
            stored=frozenset(self.stored),
            references=tuple(self.references),
        )

    def first_failure(self) -> tuple[int, str] | None:
        failures = list(self.failures)
        for key, loop in self.loop_failures.items():
            # The compiler names the first `loop` assigned in the loop's subtree.
            line = next(
                name.lineno
                for name in loop.find_all(self.name_type)
                if name.ctx == "store" and name.name == "loop"
            )
            failures.append((key, line, "Can't assign to special loop variable in for-loop target"))
        if not failures:
            return None
        _, line, message = min(failures)
        return line, message

    def _key(self) -> tuple[int, int, int]:
        self.order += 1
        return (1 if self.block == 0 else 2, self.block, self.order)

    def _fail(self, line: int, message: str) -> None:
        if self.checking:
            self.failures.append((self._key(), line, message))

    # -- the walk --------------------------------------------------------------------------

    def walk(self, tree: nodes.Template) -> None:
        self.depth = self.max_depth = 1
        self._body(tree.body)

    def visit(self, node: nodes.Node) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            self.max_depth = self.depth
        handler = self.handlers.get(type(node))
        if handler is not None:
            handler(self, node)
        else:
            for child in node.iter_child_nodes():
                self.visit(child)
        self.depth -= 1

    def _body(self, children: list[Any]) -> None:
        """A list of statements, as the compiler's ``blockvisit``."""
        checking, exited = self.checking, self.exited
        self.exited = False
        for child in children:
            self.visit(child)
        if self.exited:  # the compiler's CompilerExit stops at the end of this list
            self.checking = checking
        self.exited = exited

    def _inner(
        self,
        children: list[Any],
        *,
        implicit: frozenset[str] | None = None,
        output_check: bool | None = None,
    ) -> None:
        """``children`` in an inner scope (``Frame.inner()``): strict, not the top level."""
        saved = (
            self.soft,
            self.toplevel,
            self.rootlevel,
            self.implicit,
            self.output_check,
            self.unentered,
        )
        self.soft = self.toplevel = self.rootlevel = False
        if implicit is not None:
            self.implicit = implicit
        if output_check is not None:
            self.output_check = output_check
        if not self.checking:
            self.unentered = True
        self._body(children)
        (
            self.soft,
            self.toplevel,
            self.rootlevel,
            self.implicit,
            self.output_check,
            self.unentered,
        ) = saved

    def _soft(self, children: list[Any]) -> None:
        """``children`` in a soft scope (``Frame.soft()``): unknown filters fail only when run."""
        saved = self.soft, self.rootlevel
        self.soft = True
        self.rootlevel = False
        self._body(children)
        self.soft, self.rootlevel = saved

    def _leaf(self, node: nodes.Node) -> None:
        pass

    def _output(self, node: nodes.Output) -> None:
        checking = self.checking
        if self.output_check and self.known_extends:
            self.checking = False  # a child template's output outside blocks: never compiled
        for child in node.nodes:
            self.visit(child)
        self.checking = checking

    # names

    def _load(self, name: str, line: int) -> None:
        if name == "params":
            self.whole.append(line)
        elif name not in self.allowed and name not in self.implicit and not self.unentered:
            _record(self.loads, name, line)

    def _name(self, node: nodes.Name) -> None:
        if node.ctx == "load":
            self._load(node.name, node.lineno)
            return
        self.stored.add(node.name)
        if node.ctx == "store" and node.name == "loop":
            for key, loop, checked in self.loops:
                if checked:
                    self.loop_failures[key] = loop

    def _nsref(self, node: nodes.NSRef) -> None:
        # `{% set ns.x = 1 %}` reads `ns`: it has to be defined.
        if node.name not in CONTEXT_NAMES:
            self._load(node.name, node.lineno)

    def _context_name(self, node: nodes.Node) -> str | None:
        if isinstance(node, self.name_type) and node.ctx == "load" and node.name in CONTEXT_NAMES:
            return node.name
        return None

    def _const_str(self, node: nodes.Node | None) -> str | None:
        if isinstance(node, self.const_type) and isinstance(node.value, str):
            return node.value
        return None

    def _use(self, owner: str, key: str | None, line: int) -> None:
        if owner == "params":
            if key is None:
                self.whole.append(line)
            else:
                _record(self.params, key, line)
        elif key is not None and owner in self.fields:
            _record(self.fields[owner], key, line)

    def _required_output(self, node: nodes.Getattr | nodes.Getitem, key: str | None) -> bool:
        """Record ``requires.<app>.<output>`` (names or constant subscripts) as one use.

        An attribute a dict has (``requires.alpha.items``) is that method in
        Jinja, not an output: left to the usual walk.
        """
        inner = node.node
        if key is None:
            return False
        if isinstance(node, self.getattr_type) and hasattr(dict, key):
            return False
        if isinstance(inner, self.getattr_type):
            app: str | None = inner.attr
        elif isinstance(inner, self.getitem_type):
            app = self._const_str(inner.arg)
        else:
            return False
        if app is None or self._context_name(inner.node) != "requires":
            return False
        _record(self.requires_fields, f"{app}.{key}", node.lineno)
        return True

    def _getattr(self, node: nodes.Getattr) -> None:
        if self._required_output(node, node.attr):
            return
        owner = self._context_name(node.node)
        if owner is not None:
            self._use(owner, node.attr, node.lineno)
        else:
            self.visit(node.node)

    def _getitem(self, node: nodes.Getitem) -> None:
        if self._required_output(node, self._const_str(node.arg)):
            return  # both keys are constants: nothing else to walk
        owner = self._context_name(node.node)
        if owner is not None:
            self._use(owner, self._const_str(node.arg), node.lineno)
        else:
            self.visit(node.node)
        self.visit(node.arg)

    def _call(self, node: nodes.Call) -> None:
        callee = node.node
        if isinstance(callee, self.getattr_type):
            owner = self._context_name(callee.node)
            method = callee.attr
            if owner is not None and method in _DICT_METHODS:
                # params.get('x') reads one parameter; items()/keys()/values() read them all.
                if owner == "params":
                    key = self._const_str(node.args[0]) if node.args else None
                    self._use(owner, key if method == "get" else None, node.lineno)
                self._arguments(node)
                return
        self.visit(callee)
        self._arguments(node)

    def _arguments(self, node: nodes.Call | nodes.Filter | nodes.Test) -> None:
        for argument in node.args:
            self.visit(argument)
        # Keyword arguments named like a Python keyword are compiled after *args.
        late = any(iskeyword(str(keyword.key)) for keyword in node.kwargs)
        if not late:
            for keyword in node.kwargs:
                self.visit(keyword)
        if node.dyn_args is not None:
            self.visit(node.dyn_args)
        if late:
            for keyword in node.kwargs:
                self.visit(keyword)
        if node.dyn_kwargs is not None:
            self.visit(node.dyn_kwargs)

    def _compare(self, node: nodes.Compare) -> None:
        if len(node.ops) == 1:
            operand = node.ops[0]
            key = self._const_str(node.expr)
            if (
                operand.op in ("in", "notin")
                and key is not None
                and self._context_name(operand.expr) == "params"
            ):
                self._use("params", key, node.lineno)
                return
        self.visit(node.expr)
        for operand in node.ops:
            self.visit(operand)

    # filters and tests: the compiler looks the name up before the arguments

    def _filter(self, node: nodes.Filter) -> None:
        if not self.soft and node.name not in self.filters:
            self._fail(node.lineno, f"No filter named {node.name!r}.")
        if node.node is not None:
            self.visit(node.node)
        self._arguments(node)

    def _test(self, node: nodes.Test) -> None:
        if not self.soft and node.name not in self.tests:
            self._fail(node.lineno, f"No test named {node.name!r}.")
        self.visit(node.node)
        self._arguments(node)

    def _condexpr(self, node: nodes.CondExpr) -> None:
        self._folds(node)
        saved = self.soft
        self.soft = True
        self.visit(node.expr1)
        self.visit(node.test)
        if node.expr2 is not None:
            self.visit(node.expr2)
        self.soft = saved

    # expressions of literals

    def _concat(self, node: nodes.Concat) -> None:
        self._folds(node)
        for child in node.iter_child_nodes():
            self.visit(child)

    def _folds(self, node: nodes.Expr) -> None:
        """Fail as the compiler does where folding ``node`` (literals only) raises."""
        reason = self.folder.failure(node)
        if reason is not None:
            message = f"this expression of literals fails when Jinja compiles it: {reason}"
            self._fail(node.lineno, message)

    # statements

    def _if(self, node: nodes.If) -> None:
        saved = self.soft, self.rootlevel
        self.soft = True
        self.rootlevel = False
        self.visit(node.test)
        self._body(node.body)
        for branch in node.elif_:
            self.visit(branch)
        self._body(node.else_)
        self.soft, self.rootlevel = saved

    def _for(self, node: nodes.For) -> None:
        if node.test is not None:
            self._inner([node.test])
        # The check for `loop` being assigned, anywhere inside: when the loop is compiled.
        self.loops.append((self._key(), node, self.checking))
        self._inner([node.target])
        if not node.recursive:
            self.visit(node.iter)
        self._inner(node.body, implicit=self.implicit | {"loop"})
        self._inner(node.else_)
        if node.recursive:
            self.visit(node.iter)
        self.loops.pop()

    def _macro(self, node: nodes.Macro) -> None:
        self.stored.add(node.name)
        self._macro_body(node)

    def _callblock(self, node: nodes.CallBlock) -> None:
        self._macro_body(node)
        self.visit(node.call)

    def _macro_body(self, node: nodes.Macro | nodes.CallBlock) -> None:
        explicit = None
        for index, argument in enumerate(node.args):
            if argument.name == "caller":
                explicit = index
        if explicit is not None and self.checking:
            from jinja2.compiler import find_undeclared

            if "caller" in find_undeclared(node.body, ("caller",)):
                try:
                    node.defaults[explicit - len(node.args)]
                except IndexError:
                    self._fail(
                        node.lineno,
                        "When defining macros or call blocks the special "
                        '"caller" argument must be omitted or be given a default.',
                    )
        # A macro's output is its return value: never skipped as a child template's.
        self._inner([*node.args, *node.defaults], output_check=False)
        self._inner(node.body, implicit=self.implicit | _MACRO_IMPLICIT, output_check=False)

    def _filterblock(self, node: nodes.FilterBlock) -> None:
        self._inner([*node.body, node.filter])

    def _with(self, node: nodes.With) -> None:
        for target, value in zip(node.targets, node.values, strict=False):
            self._inner([target])
            self.visit(value)
        self._inner(node.body)

    def _assignblock(self, node: nodes.AssignBlock) -> None:
        self._inner(node.body, output_check=False)
        self.visit(node.target)
        if node.filter is not None:
            self._inner([node.filter], output_check=False)

    def _scope(self, node: nodes.Scope) -> None:
        self._inner(node.body)

    def _block(self, node: nodes.Block) -> None:
        if node.name in self.blocks:
            # The compiler checks this first, over the whole template.
            message = f"block {node.name!r} defined twice"
            self.failures.append(((0, 0, self._key()[2]), node.lineno, message))
        self.blocks.add(node.name)
        self.block_count += 1
        # A block's body is compiled after the top level, as a function of its
        # own, whatever was skipped around it: nothing of the scopes around it
        # but `self` and `super`.
        saved = self.block, self.checking, self.exited, self.unentered
        self.block, self.checking, self.exited = self.block_count, True, False
        self.unentered = False
        self._inner(node.body, implicit=_BLOCK_IMPLICIT, output_check=False)
        self.block, self.checking, self.exited, self.unentered = saved

    def _extends(self, node: nodes.Extends) -> None:
        if not self.checking:
            self._reference(node)
            return
        if not self.toplevel:
            self._fail(node.lineno, "cannot use extend from a non top-level scope")
        elif self.extends_seen and self.known_extends:
            # "extended multiple times" at run time; the compiler stops this
            # statement list here (CompilerExit).
            self.exited = True
            self.checking = False
        else:
            self.extends_seen += 1
            if self.rootlevel:
                self.known_extends = True
        self._reference(node)

    def _reference(
        self, node: nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport
    ) -> None:
        from jinja2 import nodes as n

        self.visit(node.template)
        if isinstance(node, n.Import):
            self.stored.add(node.target)
        elif isinstance(node, n.FromImport):
            for imported in node.names:
                self.stored.add(imported[1] if isinstance(imported, tuple) else imported)
        self.references.append(reference_of(node))


@functools.cache
def _handlers() -> dict[type, Any]:
    """The walk's method for each kind of node (the others: their children are walked)."""
    from jinja2 import nodes as n

    w = Walker
    return {
        n.Output: w._output,
        n.TemplateData: w._leaf,
        n.Const: w._leaf,
        n.Name: w._name,
        n.NSRef: w._nsref,
        n.Getattr: w._getattr,
        n.Getitem: w._getitem,
        n.Call: w._call,
        n.Compare: w._compare,
        n.Filter: w._filter,
        n.Test: w._test,
        n.CondExpr: w._condexpr,
        n.Concat: w._concat,
        n.If: w._if,
        n.For: w._for,
        n.Macro: w._macro,
        n.CallBlock: w._callblock,
        n.FilterBlock: w._filterblock,
        n.With: w._with,
        n.AssignBlock: w._assignblock,
        n.Scope: w._scope,
        n.Block: w._block,
        n.Extends: w._extends,
        n.Include: w._reference,
        n.Import: w._reference,
        n.FromImport: w._reference,
    }


_ROOT_IMPLICIT = frozenset({"self"})
_BLOCK_IMPLICIT = frozenset({"self", "super"})
_MACRO_IMPLICIT = frozenset({"caller", "kwargs", "varargs"})
