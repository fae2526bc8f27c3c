#!/usr/bin/env python3
"""Writes the values table of charts/gitseal/README.md from the comments of values.yaml.

A comment block starting with `# --` describes the key right below it; a documented key
whose value is a block (e.g. `resources`) is one row with its whole default. Every key
must be documented itself or lie under a documented key, else this fails. The table goes
between the markers `<!-- values-table:start -->` and `<!-- values-table:end -->`.

    python3 scripts/chart-values-table.py           # rewrite the table
    python3 scripts/chart-values-table.py --check   # exit 1 if the README is out of date

Only the YAML that values.yaml uses is read: block maps, block lists, flow `[]`/`{}` and
flat flow lists, plain/quoted scalars, comments on their own line.
"""

import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "gitseal"
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"


class ValuesError(Exception):
    pass


def scalar(text, where):
    text = text.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return json.loads(text)
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return {}
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [scalar(item, where) for item in inner.split(",")] if inner else []
    if text.startswith(("{", "[", "&", "*", "!", "|", ">")):
        raise ValuesError(f"{where}: unsupported YAML: {text}")
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~"):
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def lines_of(path):
    """(line number, indent, text) of every line with content; comments as text."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            out.append((number, None, ""))
            continue
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise ValuesError(f"{path}:{number}: tab in indentation")
        out.append((number, len(line) - len(line.lstrip()), stripped))
    return out


class Parser:
    def __init__(self, path):
        self.path = path
        self.lines = lines_of(path)
        self.pos = 0
        self.docs = {}  # dotted path -> description
        self.pending = None

    def where(self, number):
        return f"{self.path.name}:{number}"

    def skip_blank_and_comments(self):
        """Skips blank lines and comments, collecting a `# --` block for the next key."""
        while self.pos < len(self.lines):
            number, indent, text = self.lines[self.pos]
            if indent is None:
                self.pending = None
            elif text.startswith("# --"):
                self.pending = [text[4:].strip()]
            elif text.startswith("#"):
                if self.pending is not None:
                    self.pending.append(text[1:].strip())
            else:
                return
            self.pos += 1

    def block(self, indent, path):
        """The block (map or list) whose lines are indented by exactly `indent`."""
        self.skip_blank_and_comments()
        if self.pos >= len(self.lines):
            raise ValuesError(f"{self.path.name}: empty block for {'.'.join(path)}")
        if self.lines[self.pos][2].startswith("- "):
            return self.sequence(indent, path)
        return self.mapping(indent, path)

    def mapping(self, indent, path):
        result = {}
        while True:
            self.skip_blank_and_comments()
            if self.pos >= len(self.lines):
                return result
            number, this, text = self.lines[self.pos]
            if this < indent:
                return result
            if this > indent or text.startswith("- "):
                raise ValuesError(f"{self.where(number)}: unexpected indentation")
            match = re.fullmatch(r"([A-Za-z0-9_.\-/]+):(?:\s+(.*))?", text)
            if not match:
                raise ValuesError(f"{self.where(number)}: not a `key: value` line: {text}")
            key, rest = match.group(1), (match.group(2) or "").strip()
            key_path = path + [key]
            if self.pending is not None:
                self.docs[".".join(key_path)] = " ".join(p for p in self.pending if p)
                self.pending = None
            self.pos += 1
            if rest and not rest.startswith("#"):
                result[key] = scalar(re.sub(r"\s+#.*$", "", rest), self.where(number))
            else:
                self.skip_blank_and_comments()
                if self.pos >= len(self.lines):
                    raise ValuesError(f"{self.where(number)}: `{key}` has no value")
                child_indent = self.lines[self.pos][1]
                is_list = self.lines[self.pos][2].startswith("- ")
                if child_indent < indent or (child_indent == indent and not is_list):
                    raise ValuesError(f"{self.where(number)}: `{key}` has no value")
                result[key] = self.block(child_indent, key_path)

    def sequence(self, indent, path):
        result = []
        while True:
            self.skip_blank_and_comments()
            if self.pos >= len(self.lines):
                return result
            number, this, text = self.lines[self.pos]
            if this < indent or not text.startswith("- "):
                return result
            if this > indent:
                raise ValuesError(f"{self.where(number)}: unexpected indentation")
            item = text[2:].strip()
            if re.fullmatch(r"[A-Za-z0-9_.\-/]+:(\s.*)?", item):
                # A map item: its first line continues at the indentation after "- ".
                self.lines[self.pos] = (number, indent + 2, item)
                result.append(self.mapping(indent + 2, path))
            else:
                self.pos += 1
                result.append(scalar(item, self.where(number)))


def parse(path):
    parser = Parser(path)
    values = parser.mapping(0, [])
    if parser.pos != len(parser.lines):
        raise ValuesError(f"{parser.where(parser.lines[parser.pos][0])}: unparsed line")
    return values, parser.docs


def rows(values, docs, prefix=""):
    """(key, type, default, description) of every documented key, in file order."""
    out = []
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if dotted in docs:
            kind = {bool: "bool", int: "int", str: "string", list: "list", dict: "object"}
            out.append((dotted, kind.get(type(value), "null"), value, docs[dotted]))
        elif isinstance(value, dict) and value:
            out.extend(rows(value, docs, dotted + "."))
        else:
            raise ValuesError(f"values.yaml: `{dotted}` has no `# --` description")
    return out


def cell(text):
    return text.replace("|", "\\|")


def table(values, docs):
    lines = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, kind, default, description in rows(values, docs):
        shown = json.dumps(default, ensure_ascii=False)
        lines.append(f"| `{key}` | {kind} | `{cell(shown)}` | {cell(description)} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the README is out of date")
    parser.add_argument("--chart", type=pathlib.Path, default=CHART, help="chart directory")
    args = parser.parse_args()
    readme = args.chart / "README.md"
    try:
        values, docs = parse(args.chart / "values.yaml")
        generated = table(values, docs)
    except ValuesError as error:
        print(f"chart-values-table: {error}", file=sys.stderr)
        return 2
    text = readme.read_text()
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        print(f"chart-values-table: {readme} needs one {START} ... {END} pair", file=sys.stderr)
        return 2
    head, rest = text.split(START)
    _, tail = rest.split(END)
    updated = f"{head}{START}\n{generated}\n{END}{tail}"
    if args.check:
        if updated != text:
            print(
                f"chart-values-table: {readme} is out of date with values.yaml; "
                "run python3 scripts/chart-values-table.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if updated != text:
        readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
