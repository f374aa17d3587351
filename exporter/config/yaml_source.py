"""A YAML file read into plain values, remembering the line and column of every key path.

Both files the exporter reads, ``--config.file`` and ``--web.config.file``, are read here, the same
way. PyYAML on its own silently keeps the last of two equal keys, expands aliases without limit and
words its errors with a snippet of the offending line (which may hold a secret). Composing the nodes
and turning them into values ourselves lets us refuse duplicate keys, cap what aliases expand to,
and name the line of every problem without quoting the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from collectors.helpers.bounded_file import MAX_CONFIG_FILE_BYTES, read_bounded_file

__all__ = ["KeyPath", "Position", "MAX_YAML_NODES", "Document", "YamlError", "YamlSyntaxError", "read_yaml"]

KeyPath = tuple[str | int, ...]  # ("targets", 0, "name"); the root is ()
Position = tuple[int, int]  # 1-based line, column
# Aliases can expand a small file exponentially ("billion laughs"); cap the expanded size.
MAX_YAML_NODES = 100_000


@dataclass
class Document:
    """The values of a YAML file, where each key path is, and what is wrong in it (key path, message,
    position): duplicate keys, unsupported tags, and so on. The values leave out what is wrong."""

    data: Any
    positions: dict[KeyPath, Position]
    problems: list[tuple[KeyPath, str, Position]]


class YamlError(Exception):
    """The file is not YAML at all, so there is nothing to validate. ``message`` says why without
    quoting the file; ``position`` is where, when the parser knows."""

    def __init__(self, message: str, position: Position | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class YamlSyntaxError(YamlError):
    """A syntax error: ``words`` are the parser's own (``message`` is "not valid YAML: <words>")."""

    def __init__(self, words: str, position: Position | None) -> None:
        super().__init__(f"not valid YAML: {words}", position)
        self.words = words


def read_yaml(path: Path, *, typed_keys: bool = False) -> Document | None:
    """Read and convert a YAML file; None when it holds no document (empty, or only comments).

    Raises OSError when the file cannot be read, FileRefused (an OSError) when it is not a regular file
    or is larger than MAX_CONFIG_FILE_BYTES (the caller names the file in its own words), and
    YamlError when it is not YAML. Keys are taken as written ("on", "1" or "null" stay strings)
    unless ``typed_keys``, where they are read like values (1234 is an int), as PyYAML does.
    """
    raw = read_bounded_file(path, MAX_CONFIG_FILE_BYTES)  # a FIFO, /dev/zero or a huge file: FileRefused
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, raw) from None
    except yaml.YAMLError:
        raise YamlError("not valid YAML") from None
    except RecursionError:
        raise YamlError("not usable YAML: nested too deeply") from None
    if root is None:
        return None
    return _NodeConverter(typed_keys=typed_keys).convert_document(root)


def _syntax_error(exc: yaml.MarkedYAMLError) -> YamlSyntaxError:
    # Built from the parser's own words, not str(exc): that includes a snippet of the line, which
    # could hold a secret someone pasted into the file.
    mark = exc.problem_mark or exc.context_mark
    words = " ".join(part for part in (exc.context, exc.problem) if part)
    return YamlSyntaxError(words or "syntax error", _position(mark) if mark is not None else None)


def _reader_error(exc: yaml.reader.ReaderError, raw: bytes) -> YamlError:
    if exc.encoding != "unicode":  # a decoding error: the position is a byte offset
        return YamlError(f"not valid YAML: the file is not {exc.encoding} text ({exc.reason})")
    text = raw.decode("utf-8-sig", errors="replace")[: exc.position]
    line = text.count("\n") + 1
    column = exc.position - (text.rfind("\n") + 1) + 1
    return YamlError(f"not valid YAML: control character #x{exc.character:04x} is not allowed", (line, column))


class _DocumentTooLarge(Exception):
    pass


class _NodeConverter:
    """Turns composed YAML nodes into dicts, lists and scalars, recording key-path positions and
    problems (duplicate keys, odd tags) along the way."""

    _MAP_TAG = "tag:yaml.org,2002:map"
    _SEQ_TAG = "tag:yaml.org,2002:seq"
    _MERGE_TAG = "tag:yaml.org,2002:merge"

    def __init__(self, *, typed_keys: bool) -> None:
        self.positions: dict[KeyPath, Position] = {}
        self.problems: list[tuple[KeyPath, str, Position]] = []
        self._typed_keys = typed_keys
        self._constructor = yaml.constructor.SafeConstructor()
        self._budget = MAX_YAML_NODES
        self._active: set[int] = set()  # nodes on the current path: detects recursive aliases

    def convert_document(self, root: yaml.Node) -> Document:
        self.positions[()] = _position(root.start_mark)
        try:
            data = self._convert(root, ())
        except _DocumentTooLarge:
            data = None
            self.problems.append(
                (
                    (),
                    f"the document is too large (more than {MAX_YAML_NODES} values once aliases are expanded)",
                    (1, 1),
                )
            )
        except RecursionError:
            data = None
            self.problems.append(((), "the document is nested too deeply", (1, 1)))
        return Document(data, self.positions, self.problems)

    def _convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise _DocumentTooLarge
        if id(node) in self._active:
            self._problem(path, "recursive YAML alias", node)
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if node.tag not in (self._MAP_TAG, self._SEQ_TAG):
            self._problem(path, f"unsupported YAML tag {node.tag!r}", node)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path)
            return self._mapping(node, path)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            self._problem(path, f"unsupported YAML tag {node.tag!r}", node)
        except Exception:  # e.g. "!!int abc": the constructor's own error text would echo the value
            self._problem(path, f"value cannot be read as {node.tag.rsplit(':', 1)[-1]}", node)
        return None

    def _sequence(self, node: yaml.SequenceNode, path: KeyPath) -> list[Any]:
        items = []
        for index, child in enumerate(node.value):
            self.positions[path + (index,)] = _position(child.start_mark)
            items.append(self._convert(child, path + (index,)))
        return items

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        # YAML merge keys ("<<: *defaults") first, so that explicit keys override them.
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == self._MERGE_TAG:
                result.update(self._merge_sources(value_node, path))
        seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == self._MERGE_TAG:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(path, "mapping keys must be plain strings", key_node)
                continue
            key = self._scalar(key_node, path) if self._typed_keys else key_node.value
            key_path = path + (key,)
            if key in seen:
                self._problem(key_path, f"duplicate key {key!r}: first defined at line {seen[key][0]}", key_node)
                continue
            seen[key] = self.positions[key_path] = _position(key_node.start_mark)
            result[key] = self._convert(value_node, key_path)
        return result

    def _merge_sources(self, node: yaml.Node, path: KeyPath) -> dict[Any, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for source in reversed(sources):  # the first source listed wins
            if isinstance(source, yaml.MappingNode):
                merged.update(self._convert(source, path) or {})
            else:
                self._problem(path, "a YAML merge key (<<) must refer to a mapping", source)
        return merged

    def _problem(self, path: KeyPath, message: str, node: yaml.Node) -> None:
        self.problems.append((path, message, _position(node.start_mark)))


def _position(mark: yaml.Mark) -> Position:
    return (mark.line + 1, mark.column + 1)
