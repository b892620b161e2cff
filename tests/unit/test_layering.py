"""The package's layering, read from the import statements of every module (so a test fails when a
module reaches across a line, whatever runs when).

* the core (everything but the front ends) never imports :mod:`refsim.analysis`;
* nothing under ``refsim/`` imports torch at module level (torch is an optional dependency,
  imported inside the functions that need it)."""
import ast
import pathlib

import refsim

ROOT = pathlib.Path(refsim.__file__).parent
#: modules that compose the core with the analysis for a user (docs/architecture.md)
FRONT_ENDS = {"cli.py", "_cli_options.py", "demo.py", "segment.py", "bench"}


def _imports(path):
    """(module name, at module level?) of every import in ``path``, relative imports resolved."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(id(n) for n in tree.body)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
            if node.module:
                names += [f"{mod}.{a.name}" for a in node.names]
            out += [(n, id(node) in top) for n in names]
    return out


def _core_files():
    for path in sorted(ROOT.rglob("*.py")):
        first = path.relative_to(ROOT).parts[0]
        if first in FRONT_ENDS or first == "analysis":
            continue
        yield path


def test_the_core_never_imports_analysis():
    bad = [(str(p.relative_to(ROOT)), m) for p in _core_files() for m, _ in _imports(p)
           if m == "refsim.analysis" or m.startswith("refsim.analysis.")]
    assert not bad, bad


def test_the_resolver_sees_relative_imports():
    """The check above can fail: the resolver finds a relative import of analysis in a front end."""
    found = [m for m, _ in _imports(ROOT / "demo.py")]
    assert any(m.startswith("refsim.analysis") for m in found), found


def test_no_module_imports_torch_at_module_level():
    bad = [(str(p.relative_to(ROOT)), m) for p in sorted(ROOT.rglob("*.py")) for m, top in _imports(p)
           if top and (m == "torch" or m.startswith("torch."))]
    assert not bad, bad


#: the only packages imported inside functions, and why: optional dependencies (refsim/_optional.py)
#: and three core dependencies whose import costs 0.3-0.5 s, paid only by the commands that use them
LAZY = {"torch": "optional", "snntorch": "optional", "spikingjelly": "optional", "hypothesis": "test extra",
        "onnx": "optional", "nir": "optional", "h5py": "optional", "distributed": "optional", "dask": "optional",
        "matplotlib": "import time (plots only)", "nibabel": "import time (NIfTI only)",
        "scipy": "import time (SSIM only)"}


def test_imports_are_at_module_level_except_lazy_packages():
    """Every refsim-internal and standard-library import is at module level, so the import
    statements show the real dependency graph; only :data:`LAZY` packages are imported inside
    functions."""
    bad = [(str(p.relative_to(ROOT)), m) for p in sorted(ROOT.rglob("*.py")) for m, top in _imports(p)
           if not top and m.split(".")[0] not in LAZY]
    assert not bad, bad


def test_the_default_profile_is_written_once():
    """The default profile's name appears as a literal only in semantics.py (DEFAULT_PROFILE);
    everything else asks semantics (DEFAULT_PROFILE, profile_for). The benchmark and the demo
    model's generator name the paper's profile on purpose: they measure and build that profile."""
    on_purpose = {"semantics.py", "bench/__init__.py", "data/make_demo_model.py"}
    from refsim.semantics import DEFAULT_PROFILE
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel in on_purpose:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        doc = {id(n.body[0].value) for n in ast.walk(tree)
               if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
               and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        bad += [(rel, n.lineno) for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and n.value == DEFAULT_PROFILE and id(n) not in doc]
    assert not bad, bad
