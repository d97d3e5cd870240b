"""The files of a build context that a .dockerignore file lets through, with the rules
BuildKit and buildah apply (github.com/moby/patternmatcher): patterns are read in order,
the last one matching a path decides, `!` re-includes, a pattern matching a directory
covers everything below it, `*` and `?` stay within one path segment, `**` spans any number
of them. Used to configure the image's build tree exactly as podman or Docker would hand
it over, without either.
"""
import os
import pathlib
import re


def _regex(pattern):
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            # "**/" matches zero or more whole segments; a trailing "**" anything
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
            else:
                out.append(".*")
                i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def parse(text):
    """[(negated, compiled regex)] from the file's text; comments and blanks skipped."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        if neg:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/")
        rules.append((neg, _regex(line)))
    return rules


def excluded(rules, rel):
    """True when the path rel (relative, '/'-separated) stays out of the context."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    out = False
    for neg, rx in rules:
        if any(rx.match(p) for p in prefixes):
            out = not neg
    return out


def context_files(files, ignore_file):
    """The paths of files (relative, '/'-separated: a checkout's files as git lists them)
    that the ignore file admits, sorted."""
    rules = parse(pathlib.Path(ignore_file).read_text())
    return sorted(f for f in files if not excluded(rules, f))
