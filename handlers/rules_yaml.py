"""Read rules.yaml into plain data, refusing what would hang, crash or silently mislead.

PyYAML's safe loader is used with three limits. Anchors and aliases are
refused: ten nested aliases expand a 500-byte file into billions of nodes,
and rules.yaml never needs them. Nesting deeper than MAX_DEPTH is refused
before pydantic would hit Python's recursion limit. Dates are kept as text
(the timestamp resolver is removed), so that an impossible date such as
2027-02-30 reaches pydantic and is reported with its line, instead of
raising from inside the YAML loader.
"""

from pathlib import Path
from typing import Any

import yaml

# A rules file is a few kilobytes; a larger file is a mistake (a log pasted in, a
# wrong path), and reading one of many megabytes would stall the reload thread.
MAX_FILE_BYTES = 1024 * 1024
# all/any/not nest conditions; no real rule goes deeper than a handful of levels.
MAX_DEPTH = 40


class RulesYamlError(Exception):
    """The file cannot be read as rules: the message names the place and the fix."""


class _RulesLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver, so dates stay text."""


_RulesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_rules_text(path: Path) -> str:
    """Return the file's text; raise RulesYamlError when it is too large or not UTF-8."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RulesYamlError(
                f"{path}: the file is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,}; "
                "check that THREADDESK_RULES names the rules file"
            )
        raw = path.read_bytes()
    except OSError as error:
        raise RulesYamlError(f"cannot read the rules file {path}: {error.strerror}") from error

    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise RulesYamlError(
            f"{path}:{line}:{column}: not valid UTF-8; save the file as UTF-8"
        ) from error


def parse_rules_yaml(path: Path, text: str) -> tuple[yaml.Node | None, Any]:
    """Return the file's node tree (for error positions) and its data."""
    try:
        _refuse_aliases(path, text)
        tree = yaml.compose(text, Loader=_RulesLoader)
        _refuse_deep_nesting(path, tree)
        data = yaml.load(text, Loader=_RulesLoader)
    except yaml.YAMLError as error:
        raise RulesYamlError(_describe_yaml_error(path, error)) from error
    except RecursionError as error:
        # PyYAML parses flow style ({not: {not: ...}}) recursively, so very deep
        # nesting fails inside the parser before _refuse_deep_nesting can see it.
        raise RulesYamlError(
            f"{path}: nested more than {MAX_DEPTH} levels deep; split the condition into "
            "several rules"
        ) from error
    return tree, data


def position(mark: Any) -> str:
    """Return "L:C:" (line and column, as compilers print them) for a YAML mark, or ""."""
    if mark is None:
        return ""
    return f"{mark.line + 1}:{mark.column + 1}:"


def _refuse_aliases(path: Path, text: str) -> None:
    for event in yaml.parse(text, Loader=_RulesLoader):
        if isinstance(event, yaml.AliasEvent):
            raise RulesYamlError(
                f"{path}:{position(event.start_mark)} aliases (*{event.anchor}) are not "
                "supported in rules.yaml; write the value out in full"
            )


def _refuse_deep_nesting(path: Path, tree: yaml.Node | None) -> None:
    pending: list[tuple[yaml.Node, int]] = [(tree, 1)] if tree is not None else []
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise RulesYamlError(
                f"{path}:{position(node.start_mark)} nested more than {MAX_DEPTH} levels deep; "
                "split the condition into several rules"
            )
        if isinstance(node, yaml.MappingNode):
            pending.extend((child, depth + 1) for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((child, depth + 1) for child in node.value)


def _describe_yaml_error(path: Path, error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    context_mark = getattr(error, "context_mark", None)
    if context and context_mark is not None:
        problem += f" ({context} that starts at {path}:{position(context_mark).rstrip(':')})"
    if "'\\t'" in problem:
        problem += "; indent with spaces, not tabs"
    return f"{path}:{position(mark)} invalid YAML: {problem}"
