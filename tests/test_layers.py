"""The package's layers: no import cycles, and no lower layer imports a higher one.

Layers, from the bottom (a module may import its own layer and those below):

0. ``errors``, ``interfaces``, ``mutf7``, ``uidsets``: shared vocabulary
1. ``profile``, ``mime``: the conformance profile as data; message parsing
2. ``store``, ``tls``: storage backends; certificates and contexts
3. ``auth``: checkers, realm, SASL, throttle
4. ``session``, ``mailbox``, ``transfer``: the session core shared by the protocols; the
   selected-mailbox layer
5. ``imap``, ``pop3``, ``lmtp``: the protocols
6. ``service``: configuration and assembly (make_service, twistd)
7. ``testing``: kits for tests and backend authors (the in-process server, faults)
8. ``cli``: the ``exchmail`` command, which may use all of the above

Module-level imports count, also inside ``if``/``try`` at module level,
but not those under ``if TYPE_CHECKING:`` (annotations only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import exchmail

ROOT = Path(exchmail.__file__).parent

LAYERS = {
    "errors": 0,
    "interfaces": 0,
    "mutf7": 0,
    "uidsets": 0,
    "__init__": 0,
    "profile": 1,
    "mime": 1,
    "store": 2,
    "tls": 2,
    "auth": 3,
    "session": 4,
    "mailbox": 4,
    "transfer": 4,
    "imap": 5,
    "pop3": 5,
    "lmtp": 5,
    "service": 6,
    "testing": 7,
    "cli": 8,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_level_imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
                walk(node.orelse)
            elif isinstance(node, (ast.If, ast.Try)):
                walk(
                    node.body
                    + node.orelse
                    + getattr(node, "finalbody", [])
                    + [x for h in getattr(node, "handlers", []) for x in h.body]
                )
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("exchmail"):
                    found.add(node.module)
                    # ``from exchmail.imap import fetch`` imports a module too
                    found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("exchmail"))

    walk(tree.body)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        imports = top_level_imports(ast.parse(path.read_text()))
        edges[name] = {i for i in imports if i in modules and i != name and not name.startswith(i + ".")}
    return edges


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def test_every_package_has_a_layer() -> None:
    for module in graph():
        layer(module)  # KeyError names a package without a layer


def test_no_upward_imports() -> None:
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in graph().items()
        for target in targets
        if layer(target) > layer(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[module] = 2
        path.pop()
        return None

    for module in sorted(edges):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, " -> ".join(cycle)
