"""Reading YAML with the source line of every key path, so that errors can name it."""

from __future__ import annotations

import re
from typing import Any

import yaml

from callrouter.directory.model import Problem


class _Located:
    """Plain Python values from YAML nodes plus the source line of every key path."""

    def __init__(self, file: str):
        self.file = file
        self.lines: dict[str, int] = {}
        self.raw: dict[str, str] = {}  # the source text of every plain scalar
        self.problems: list[Problem] = []
        self._constructor: yaml.SafeLoader | None = None

    def error(self, path: str, message: str, line: int | None = None) -> None:
        if line is None:
            line = self.line_of(path)
        self.problems.append(Problem(self.file, line, path, message))

    def line_of(self, path: str) -> int | None:
        """The line of `path`, or of the nearest enclosing path that the file has (a key
        that is missing is reported at its parent; a missing top-level key at the start)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            shorter = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", path)
            if shorter == path:  # a top-level key the file does not have
                break
            path = shorter
        return self.lines.get("")

    def convert(self, node: yaml.Node, path: str) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self._scalar(key_node))
                sub = f"{path}.{key}" if path else key
                if key in out:
                    self.error(sub, "duplicate key", key_node.start_mark.line + 1)
                    continue
                self.lines[sub] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, sub)
                self.lines[sub] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode):
            self.raw[path] = node.value
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        # The safe constructor resolves tags as PyYAML would; odd values (YAML 1.1's `8:30` is
        # a number) are then caught by validation instead of being silently accepted. One
        # constructor per file read: it keeps every object it built until it is dropped.
        if self._constructor is None:
            self._constructor = yaml.SafeLoader("")
        try:
            return self._constructor.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError):
            # A plain scalar that YAML reads as an impossible value (`2026-13-01`): kept as
            # the text it is, for validation to judge where it stands (a date: not a date).
            return node.value
