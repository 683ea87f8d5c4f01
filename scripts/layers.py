#!/usr/bin/env python3
"""The module graph of the shared crate, read from its `crate::` / `super::` paths, and the rules
its layers keep (see the README's architecture section):

* no import circle between any two modules, at any depth (`adapters` and `http`, or
  `adapters::store::claims` and `adapters::store::shipments`);
* `domain` imports nothing outside `domain`: plain types and decisions;
* `ports` imports only `domain` and `clock`.

Comments and `#[cfg(test)]` modules are left out: tests may reach across layers. Usage:
`scripts/layers.py [shared/src]` prints the violations and exits 1 if there are any.
"""

import re
import sys
from pathlib import Path

RULES = {
    "domain": {"domain"},
    "ports": {"ports", "domain", "clock"},
}


def modules(root: Path) -> dict[str, Path]:
    """Module path (`adapters::store::keys`) → file, for every `.rs` file under `root`."""
    found = {}
    for path in sorted(root.rglob("*.rs")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        found["::".join(parts)] = path
    return found


def code_of(path: Path) -> str:
    """The file's non-test code without comments."""
    text = path.read_text(encoding="utf-8")
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    return "\n".join(
        line for line in text.splitlines() if not line.strip().startswith("//")
    )


def edges(root: Path) -> dict[str, set[str]]:
    """Module → the modules it names (resolved to the longest existing module path)."""
    mods = modules(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        code = code_of(path)
        here = mod.split("::") if path.stem in ("mod", "lib") else mod.split("::")[:-1]
        named = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", code))
        for rel in re.findall(r"\bsuper::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", code):
            named.add("::".join(here[:-1] + rel.split("::")) if path.stem in ("mod", "lib") else "::".join(here + rel.split("::")))
        for group in re.findall(r"use super::\{([^}]*)\}", code):
            for name in re.findall(r"\b[a-z_][a-z0-9_]*\b", group):
                named.add("::".join(here + [name]) if path.stem not in ("mod", "lib") else "::".join(here[:-1] + [name]))
        for name in named:
            parts = name.split("::")
            while parts and "::".join(parts) not in mods:
                parts.pop()
            target = "::".join(parts)
            if target and target != mod:
                graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]], depth: int) -> list[list[str]]:
    """Strongly connected groups of more than one module, modules cut to `depth` path segments."""
    cut = lambda m: "::".join(m.split("::")[:depth])  # noqa: E731
    g: dict[str, set[str]] = {}
    for a, bs in graph.items():
        for b in bs:
            if cut(a) != cut(b):
                g.setdefault(cut(a), set()).add(cut(b))
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in list(g):
        if v not in index:
            visit(v)
    return out


def violations(root: Path) -> list[str]:
    graph = edges(root)
    found = []
    depth = max(m.count("::") + 1 for m in graph)
    seen = set()
    for d in range(1, depth + 1):
        for group in cycles(graph, d):
            key = tuple(group)
            if key not in seen:
                seen.add(key)
                found.append("import circle: " + " ↔ ".join(group))
    for mod, targets in sorted(graph.items()):
        top = mod.split("::")[0]
        allowed = RULES.get(top)
        if allowed is None:
            continue
        for t in sorted(targets):
            if t.split("::")[0] not in allowed:
                found.append(f"layer: {mod} imports {t}")
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "shared/src")
    found = violations(root)
    for line in found:
        print(line)
    print(f"{len(modules(root))} modules, {len(found)} violations")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
