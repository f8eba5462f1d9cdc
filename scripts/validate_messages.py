#!/usr/bin/env python3
"""Validate messages v2 (docs/messages.md) against the JSON Schemas in docs/schema/.

    scripts/validate_messages.py [--schemas DIR] FILE...    (JSON lines; - for stdin)

Every non-blank line must be one JSON object whose "type" names a schema
(docs/schema/<type>.schema.json); each line is checked with a real JSON Schema validator
(python3-jsonschema, draft 2020-12). Exit status: 0 all valid, 1 some invalid (each reported
with file, line and reason), 2 usage error or no validator.
"""
import json
import os
import sys

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "schema")


class Validator:
    """Validators for every message type, sharing common.schema.json."""

    def __init__(self, schema_dir=SCHEMA_DIR):
        import jsonschema  # python3-jsonschema

        self.schemas = {}
        for name in sorted(os.listdir(schema_dir)):
            if name.endswith(".schema.json"):
                with open(os.path.join(schema_dir, name), encoding="utf-8") as f:
                    self.schemas[name[: -len(".schema.json")]] = json.load(f)
        cls = jsonschema.Draft202012Validator
        for s in self.schemas.values():
            cls.check_schema(s)
        try:  # jsonschema >= 4.18: the referencing library
            from referencing import Registry, Resource

            registry = Registry().with_resources(
                (s["$id"], Resource.from_contents(s)) for s in self.schemas.values()
            )
            make = lambda s: cls(s, registry=registry)  # noqa: E731
        except ImportError:  # older jsonschema (Debian 12: 4.10)
            store = {s["$id"]: s for s in self.schemas.values()}
            make = lambda s: cls(s, resolver=jsonschema.RefResolver(s["$id"], s, store=store))  # noqa: E731
        self.validators = {t: make(s) for t, s in self.schemas.items() if t != "common"}

    def errors(self, msg):
        """The reasons msg (a parsed JSON value) is not a valid message; [] when it is."""
        if not isinstance(msg, dict):
            return ["not a JSON object"]
        t = msg.get("type")
        v = self.validators.get(t) if isinstance(t, str) else None
        if v is None:
            return ["unknown message type %r" % (t,)]
        return [
            "%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)", e.message)
            for e in sorted(v.iter_errors(msg), key=lambda e: list(e.absolute_path))
        ]

    def check_line(self, line):
        """Parse and validate one line of text: (message or None, [reasons])."""
        try:
            msg = json.loads(line)
        except ValueError as e:
            return None, ["not JSON: %s" % e]
        return msg, self.errors(msg)


def main(argv):
    args = argv[1:]
    schema_dir = SCHEMA_DIR
    if args[:1] == ["--schemas"] and len(args) >= 2:
        schema_dir, args = args[1], args[2:]
    if not args:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        val = Validator(schema_dir)
    except ImportError:
        print("validate_messages: python3-jsonschema is not installed", file=sys.stderr)
        return 2
    bad = total = 0
    for path in args:
        f = sys.stdin if path == "-" else open(path, encoding="utf-8")
        with f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                total += 1
                _, errs = val.check_line(line)
                if errs:
                    bad += 1
                    for e in errs:
                        print("%s:%d: %s" % (path, n, e), file=sys.stderr)
    print("%d messages, %d invalid" % (total, bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
