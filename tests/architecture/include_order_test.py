"""The architecture as a test: every project include follows the one-way module order, and the torch-free
libraries (core's base half, tokenizers, cluster, the CLI option helpers) include no torch header, directly or
through project headers. Fails naming the file, line and include that breaks the rule.

Order: core <- tokenizers <- data; core <- metrics (torch-free); core, tokenizers, metrics <- dataprep (torch-free); core, tokenizers, metrics, data, models <- evaluation <- rlhf; core <- models; core <- distributed; all of these <- rlhf <- experiments;
core <- cluster; core, cluster <- dashboard (torch-free); bench sees everything but the CLI's commands (only cli/options.h); cli sees everything.
"""
import os
import re
import sys

SOURCE = os.environ.get("TROUPE_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LOWER = {
    "core": set(),
    "tokenizers": {"core"},
    "metrics": {"core"},
    "dataprep": {"core", "tokenizers", "metrics"},
    "data": {"core", "tokenizers"},
    "models": {"core"},
    "distributed": {"core"},
    "evaluation": {"core", "tokenizers", "metrics", "dataprep", "data", "models"},
    "rlhf": {"core", "tokenizers", "metrics", "dataprep", "data", "models", "evaluation", "distributed"},
    "experiments": {"core", "tokenizers", "metrics", "dataprep", "data", "models", "evaluation", "distributed", "rlhf"},
    "cluster": {"core"},
    "dashboard": {"core", "cluster"},
    "bench": {"core", "tokenizers", "metrics", "dataprep", "data", "models", "evaluation", "distributed", "rlhf", "experiments", "cluster"},
    "cli": {"core", "tokenizers", "metrics", "dataprep", "data", "models", "evaluation", "distributed", "rlhf", "experiments", "cluster", "bench", "dashboard"},
}
# Single headers a module may use outside its order.
EXTRA = {"bench": {"cli/options.h"}}
# The torch half of core (core/CMakeLists.txt, troupe_core_torch); the rest of core is torch-free.
CORE_TORCH = {"checkpoint", "checkpoint_manager", "checkpoint_state", "device", "run_session", "seeding",
              "torch_runtime"}
TORCH_FREE_MODULES = {"tokenizers", "metrics", "dataprep", "cluster", "dashboard"}
TORCH_FREE_FILES = {"cli/options.h", "cli/options.cpp"}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def sources():
    for module in LOWER:
        folder = os.path.join(SOURCE, module)
        for name in sorted(os.listdir(folder)):
            if name.endswith((".h", ".cpp")):
                yield module, f"{module}/{name}"


def includes(rel):
    with open(os.path.join(SOURCE, rel), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield number, m.group(1), m.group(2)


def torch_free(module, rel):
    if module in TORCH_FREE_MODULES or rel in TORCH_FREE_FILES:
        return True
    if module == "core":
        return os.path.splitext(os.path.basename(rel))[0] not in CORE_TORCH
    return False


_torchy = {}


def torch_path(rel, seen=()):
    """The chain of includes from `rel` to a torch header, or None."""
    if rel in _torchy:
        return _torchy[rel]
    _torchy[rel] = None  # cycles
    found = None
    if os.path.exists(os.path.join(SOURCE, rel)):
        for number, kind, target in includes(rel):
            if kind == "<" and target.split("/")[0] in ("torch", "ATen", "c10"):
                found = [f"{rel}:{number} includes <{target}>"]
                break
            if kind == '"' and target.split("/")[0] in LOWER:
                sub = torch_path(target)
                if sub:
                    found = [f"{rel}:{number} includes \"{target}\""] + sub
                    break
    _torchy[rel] = found
    return found


def main():
    problems = []
    checked = 0
    for module, rel in sources():
        checked += 1
        for number, kind, target in includes(rel):
            if kind != '"':
                continue
            dep = target.split("/")[0]
            if dep not in LOWER or dep == module:
                continue
            if dep not in LOWER[module] and target not in EXTRA.get(module, set()):
                problems.append(f"{rel}:{number}: includes \"{target}\", but {module}/ may not depend on {dep}/")
        if torch_free(module, rel):
            chain = torch_path(rel)
            if chain:
                problems.append(f"{rel}: must not need torch, but " + " -> ".join(chain))
    if checked < 100:
        problems.append(f"only {checked} source files found under {SOURCE}: wrong source directory?")
    for p in problems:
        print(p)
    print(f"{checked} files checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
