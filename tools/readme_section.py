#!/usr/bin/env python3
"""readme_section.py FILE NAME CONTENT: replaces what FILE holds between the lines `<!-- NAME:begin -->` and
`<!-- NAME:end -->` with the text of CONTENT (used by `make readme-knobs` for README.md's option table)."""
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: readme_section.py FILE NAME CONTENT")
    path, name, content = sys.argv[1:]
    text = open(path, encoding="utf-8").read()
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        sys.exit(f"readme_section.py: {path} has no {begin.strip()} ... {end} markers")
    i, j = text.index(begin) + len(begin), text.index(end)
    new = text[:i] + open(content, encoding="utf-8").read() + text[j:]
    if new != text:
        open(path, "w", encoding="utf-8").write(new)
        print(f"readme_section.py: {path}: section {name} updated")


if __name__ == "__main__":
    main()
