"""Code shape figures for the structural notes: biggest files, app files over 500 lines (demo
data aside), functions over 100 lines, function-level imports of the project's own modules.

Run: ``python bench/code_shape.py [tree]`` (default: this checkout)."""

import ast
import os
import re
import sys
from pathlib import Path

PACKAGES = ["core", "registry", "pipelines", "approvals", "maturity", "portal", "ado_simulator"]
OWN = re.compile(r"^(\.|core|registry|pipelines|approvals|maturity|portal)")


def _files(root: Path) -> list[Path]:
    found = []
    for package in PACKAGES:
        for folder, _, names in os.walk(root / package):
            if "migrations" in folder or "__pycache__" in folder:
                continue
            found += [Path(folder) / name for name in names if name.endswith(".py")]
    return found


def _is_own_import(node) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or bool(OWN.match(node.module or ""))
    return isinstance(node, ast.Import) and any(OWN.match(a.name) for a in node.names)


def main(root: Path) -> None:
    files = _files(root)
    texts = {path: path.read_text() for path in files}
    sizes = sorted(((text.count("\n"), str(p.relative_to(root))) for p, text in texts.items()))
    sizes.reverse()
    over = [(n, name) for n, name in sizes if n > 500 and "demo_data" not in name]
    long_functions, lazy_imports = [], 0
    for path, text in texts.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 100:
                    long_functions.append((length, f"{path.relative_to(root)}:{node.name}"))
                lazy_imports += sum(_is_own_import(sub) for sub in ast.walk(node))
    print("biggest files:", *[f"{n} {name}" for n, name in sizes[:12]], sep="\n  ")
    print("app files over 500 lines (demo data aside):", len(over), over)
    print("functions over 100 lines:", sorted(long_functions, reverse=True))
    print("function-level imports of the project's own modules:", lazy_imports)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
