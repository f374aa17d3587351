"""The shape of a CLIXML object, to compare the simulator's answers with real captures.

A shape is what a consumer of the object can rely on: its type names, its ToString being there,
and per property (adapted ``Props`` and extended ``MS`` apart) the CLIXML element that carries it
(``S``, ``B``, ``I32``, ``DT``, ``Nil``, ``BA``...); for an object property its own shape, for a list
its type names and the elements of its items, for an enum its type names and number element.
Values are not part of a shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET

from simulator.clixml import CAPTURE_ONLY_NOTES, NS, wire_type_names

_CONTAINERS = ("LST", "IE", "STK", "QUE", "DCT")


class Document:
    """One CLIXML document (a capture file, or one answer object as pypsrp received it)."""

    def __init__(self, root: Element) -> None:
        for element in root.iter():
            element.tag = element.tag.replace(NS, "")
        self.root = root
        self.type_names = {tn.get("RefId"): [t.text or "" for t in tn] for tn in root.iter("TN")}
        self.objects = {o.get("RefId"): o for o in root.iter("Obj")}

    @classmethod
    def of_file(cls, path: Path) -> Document:
        return cls(SafeET.fromstring(path.read_bytes()))

    @classmethod
    def of_answer(cls, obj: Any) -> Document:
        """A pypsrp GenericComplexObject: pypsrp keeps each object's CLIXML as ``_xml``."""
        return cls(SafeET.fromstring(obj._xml))

    def top_level(self) -> list[Element]:
        return list(self.root) if self.root.tag == "Objs" else [self.root]

    def names(self, el: Element) -> list[str]:
        tn = el.find("TN")
        if tn is not None:
            return [t.text or "" for t in tn]
        ref = el.find("TNRef")
        return self.type_names.get(ref.get("RefId"), []) if ref is not None else []

    def shape(self, el: Element, top: bool = True) -> dict:
        """The shape of an ``Obj`` (type names as they travel: without ``Deserialized.``)."""
        if el.tag != "Obj":  # a primitive, Nil, or a Ref to another property's object
            return {"element": el.tag}
        names = wire_type_names(self.names(el))
        result: dict[str, Any] = {"element": "Obj", "types": names, "to_string": el.find("ToString") is not None}
        container = next((c for c in el if c.tag in _CONTAINERS), None)
        if container is not None:
            result["container"] = container.tag
            result["items"] = sorted({self._item(i) for i in container})
        primitive = next((c.tag for c in el if c.tag not in ("TN", "TNRef", "ToString", "Props", "MS")
                          and c.tag not in _CONTAINERS), None)
        if primitive is not None:
            result["primitive"] = primitive
        for section, key in (("Props", "adapted"), ("MS", "extended")):
            members = el.find(section)
            props: dict[str, Any] = {}
            for prop in members if members is not None else ():
                name = prop.get("N")
                if top and section == "MS" and name in CAPTURE_ONLY_NOTES:
                    continue
                props[name] = self.shape(prop, top=False)
            result[key] = props
        return result

    def _item(self, el: Element) -> str:
        if el.tag == "Obj":
            return "Obj:" + "|".join(wire_type_names(self.names(el))[:1])
        return el.tag


def differences(expected: dict, actual: dict, where: str = "", allowed: dict | None = None) -> list[str]:
    """Every way ``actual`` departs from ``expected`` (both shapes), as readable lines.

    ``allowed`` maps a property path ("Props.InstantMessagingServerName") to the one departure
    permitted there, as ``(expected element, actual element)``, e.g. ``("Nil", "S")``.
    """
    allowed = allowed or {}
    problems: list[str] = []
    here = where or "object"
    if expected.get("element") != actual.get("element"):
        pair = (expected.get("element"), actual.get("element"))
        if allowed.get(where) != pair:
            problems.append(f"{here}: element {pair[0]} in the capture, {pair[1]} in the simulator")
        return problems
    for key in ("types", "to_string", "container", "primitive"):
        if expected.get(key) != actual.get(key):
            problems.append(f"{here}: {key} {expected.get(key)!r} in the capture, {actual.get(key)!r} in the simulator")
    if expected.get("items") and actual.get("items") and expected["items"] != actual["items"]:
        problems.append(f"{here}: list items {expected['items']} in the capture, {actual['items']} in the simulator")
    for key, label in (("adapted", "Props"), ("extended", "MS")):
        want, got = expected.get(key) or {}, actual.get(key) or {}
        prefix = f"{where}." if where else ""
        for name in want:
            if name not in got:
                problems.append(f"{prefix}{label}.{name}: missing from the simulator's answer")
        for name in got:
            if name not in want:
                problems.append(f"{prefix}{label}.{name}: in the simulator's answer, not in the capture")
        for name in want:
            if name in got:
                problems.extend(differences(want[name], got[name], f"{prefix}{label}.{name}", allowed))
    return problems
