#!/usr/bin/env python3
"""Compare two text-format P4Info files by meaning, not by text.

    p4info_diff.py [--strip-prefix PFX] [--ignore-arch] EXPECTED ACTUAL

Exits 0 when they agree, 1 with one line per difference, 2 on bad input.
Compared: pkg_info.arch; per table (by name) its id, match fields (id, name,
bitwidth, match type), action refs (by action name, with scope), const default
action, direct resources, size and the other table flags; per action its id and
params (id, name, bitwidth); per counter / direct counter its id, unit, size or
table; every other object by name and id. Aliases, annotations and documentation
are not compared, nor the order of anything.

The files are parsed with the p4runtime Python package (p4.config.v1.p4info_pb2)
when it is importable, else with the small text-format reader below; either way
they are reduced to the same plain structure first.

--strip-prefix drops a leading name prefix in ACTUAL (bf-p4c writes
"pipe.GrayIngress.vip" where p4c writes "GrayIngress.vip"); --ignore-arch skips
pkg_info.arch (the TNA P4Info says "tna").
"""

import argparse
import re
import sys

# ---------------------------------------------------------------------------
# Reading: a plain tree, {field: [value, ...]}, values int/str/bool/dict.
# ---------------------------------------------------------------------------


def _from_proto(msg):
    """Turns a protobuf message into the plain tree (enums by name)."""
    from google.protobuf.descriptor import FieldDescriptor

    tree = {}
    for fd, value in msg.ListFields():
        values = list(value) if fd.label == FieldDescriptor.LABEL_REPEATED else [value]
        out = []
        for v in values:
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                out.append(_from_proto(v))
            elif fd.type == FieldDescriptor.TYPE_ENUM:
                out.append(fd.enum_type.values_by_number[v].name)
            else:
                out.append(v)
        tree[fd.name] = out
    return tree


def _load_with_protobuf(text):
    try:
        from google.protobuf import text_format
        from p4.config.v1 import p4info_pb2
    except ImportError:
        return None
    except Exception as e:  # e.g. p4runtime's generated code vs a newer protobuf
        print("p4info_diff: p4runtime package unusable (%s), using the text reader"
              % str(e).splitlines()[0], file=sys.stderr)
        return None
    msg = p4info_pb2.P4Info()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as e:
        raise ValueError(str(e)) from e
    return _from_proto(msg)


_TOKEN = re.compile(r"""
    \s+ | \#[^\n]*                                  # space, comments
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<num>-?(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?))
  | (?P<id>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[:{}<>\[\],;])
""", re.VERBOSE)


def _tokens(text):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError("unexpected character %r at offset %d" % (text[pos], pos))
        pos = m.end()
        for kind in ("str", "num", "id", "punct"):
            if m.group(kind) is not None:
                yield kind, m.group(kind)
                break


def _unquote(s):
    body = s[1:-1]
    return bytes(body, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


class _Reader:
    """Protobuf text format, as much of it as a P4Info uses."""

    def __init__(self, text):
        self.toks = list(_tokens(text))
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, want=None):
        tok = self.peek()
        if tok[0] is None or (want is not None and tok[1] != want):
            raise ValueError("expected %r, got %r" % (want, tok[1]))
        self.i += 1
        return tok

    def message(self, close=None):
        tree = {}
        while True:
            kind, val = self.peek()
            if kind is None:
                if close is not None:
                    raise ValueError("missing %r" % close)
                return tree
            if kind == "punct" and val == close:
                self.take()
                return tree
            if kind != "id":
                raise ValueError("expected a field name, got %r" % val)
            self.take()
            name = val
            if self.peek()[1] == ":":
                self.take()
            kind, val = self.peek()
            if val == "[":
                self.take()
                while self.peek()[1] != "]":
                    tree.setdefault(name, []).append(self.value())
                    if self.peek()[1] == ",":
                        self.take()
                self.take("]")
            else:
                tree.setdefault(name, []).append(self.value())
            if self.peek()[1] in (",", ";"):
                self.take()

    def value(self):
        kind, val = self.take()
        if kind == "punct" and val in ("{", "<"):
            return self.message("}" if val == "{" else ">")
        if kind == "str":
            s = _unquote(val)
            while self.peek()[0] == "str":  # adjacent strings concatenate
                s += _unquote(self.take()[1])
            return s
        if kind == "num":
            return int(val, 0) if re.fullmatch(r"-?(0[xX][0-9a-fA-F]+|[0-9]+)", val) else float(val)
        if kind == "id":
            return {"true": True, "True": True, "false": False, "False": False}.get(val, val)
        raise ValueError("unexpected %r" % val)


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tree = _load_with_protobuf(text)
    return tree if tree is not None else _Reader(text).message()


# ---------------------------------------------------------------------------
# Normalising: what the P4Info means, as comparable plain values.
# ---------------------------------------------------------------------------


def _one(tree, field, default=None):
    vals = tree.get(field, [])
    return vals[0] if vals else default


def _name(obj, prefix):
    name = _one(_one(obj, "preamble", {}), "name", "")
    if prefix and name.startswith(prefix):
        name = name[len(prefix):]
    return name


def _id(obj):
    return _one(_one(obj, "preamble", {}), "id", 0)


_KINDS = ("tables", "actions", "action_profiles", "counters", "direct_counters",
          "meters", "direct_meters", "controller_packet_metadata", "value_sets",
          "registers", "digests")


def normalise(tree, prefix=""):
    """Returns {kind: {name: description}} plus the arch."""
    ids = {}  # id -> name, to show action refs and resources by name
    for kind in _KINDS:
        for obj in tree.get(kind, []):
            ids[_id(obj)] = _name(obj, prefix)
    for ext in tree.get("externs", []):
        for inst in ext.get("instances", []):
            ids[_id(inst)] = _name(inst, prefix)

    def ref(i):
        return ids.get(i, "id %d" % i) if i else None

    out = {"arch": _one(_one(tree, "pkg_info", {}), "arch", "")}
    for kind in _KINDS:
        out[kind] = {}
    out["externs"] = {}

    for t in tree.get("tables", []):
        out["tables"][_name(t, prefix)] = {
            "id": _id(t),
            "match_fields": sorted(
                (_one(m, "id", 0), _one(m, "name", ""), _one(m, "bitwidth", 0),
                 _one(m, "match_type", _one(m, "other_match_type", "UNSPECIFIED")))
                for m in t.get("match_fields", [])),
            "action_refs": sorted(
                (ref(_one(a, "id", 0)), _one(a, "scope", "TABLE_AND_DEFAULT"))
                for a in t.get("action_refs", [])),
            "const_default_action": ref(_one(t, "const_default_action_id", 0)),
            "direct_resources": sorted(ref(i) for i in t.get("direct_resource_ids", [])),
            "implementation": ref(_one(t, "implementation_id", 0)),
            "size": _one(t, "size", 0),
            "is_const_table": _one(t, "is_const_table", False),
            "has_initial_entries": _one(t, "has_initial_entries", False),
            "idle_timeout_behavior": _one(t, "idle_timeout_behavior", "NO_TIMEOUT"),
        }
    for a in tree.get("actions", []):
        out["actions"][_name(a, prefix)] = {
            "id": _id(a),
            "params": sorted((_one(p, "id", 0), _one(p, "name", ""), _one(p, "bitwidth", 0))
                             for p in a.get("params", [])),
        }
    for c in tree.get("counters", []):
        out["counters"][_name(c, prefix)] = {
            "id": _id(c),
            "unit": _one(_one(c, "spec", {}), "unit", "UNSPECIFIED"),
            "size": _one(c, "size", 0),
        }
    for c in tree.get("direct_counters", []):
        out["direct_counters"][_name(c, prefix)] = {
            "id": _id(c),
            "unit": _one(_one(c, "spec", {}), "unit", "UNSPECIFIED"),
            "table": ref(_one(c, "direct_table_id", 0)),
        }
    for kind in _KINDS:
        if kind in ("tables", "actions", "counters", "direct_counters"):
            continue
        for obj in tree.get(kind, []):
            out[kind][_name(obj, prefix)] = {"id": _id(obj), "body": repr(obj)}
    for ext in tree.get("externs", []):
        for inst in ext.get("instances", []):
            out["externs"][_name(inst, prefix)] = {
                "id": _id(inst), "type": _one(ext, "extern_type_name", "")}
    return out


def diff(want, got):
    """Yields one human-readable line per difference."""
    if want["arch"] != got["arch"]:
        yield "pkg_info.arch: want %r, got %r" % (want["arch"], got["arch"])
    for kind in _KINDS + ("externs",):
        w, g = want[kind], got[kind]
        for name in sorted(set(w) - set(g)):
            yield "%s %s: missing" % (kind, name)
        for name in sorted(set(g) - set(w)):
            yield "%s %s: not expected (id %d)" % (kind, name, g[name]["id"])
        for name in sorted(set(w) & set(g)):
            for key in w[name]:
                if w[name][key] != g[name].get(key):
                    yield "%s %s: %s: want %r, got %r" % (kind, name, key, w[name][key],
                                                          g[name].get(key))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("expected")
    ap.add_argument("actual")
    ap.add_argument("--strip-prefix", default="",
                    help='name prefix to drop in ACTUAL, e.g. "pipe."')
    ap.add_argument("--ignore-arch", action="store_true")
    args = ap.parse_args(argv)
    try:
        want = normalise(load(args.expected))
        got = normalise(load(args.actual), args.strip_prefix)
    except (OSError, ValueError) as e:
        print("p4info_diff: %s" % e, file=sys.stderr)
        return 2
    if args.ignore_arch:
        got["arch"] = want["arch"]
    lines = list(diff(want, got))
    for line in lines:
        print(line)
    if lines:
        print("p4info_diff: %s and %s differ (%d differences)"
              % (args.expected, args.actual, len(lines)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
