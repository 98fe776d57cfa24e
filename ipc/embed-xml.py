#!/usr/bin/env python3
"""Turns the introspection XML into C strings, one per <interface>, so that
tegamid's Introspect answers with exactly the text that is installed.

Usage: embed-xml.py INPUT.xml OUTPUT.c
Fails (and so fails the build) when the XML does not parse.
"""
import re
import sys
import xml.etree.ElementTree as ET


def c_string(text):
    out = []
    for line in text.splitlines(keepends=True):
        esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        out.append(f'"{esc}"')
    return "\n                ".join(out)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    text = open(src, encoding="utf-8").read()
    ET.fromstring(text)  # well-formed or fail
    blocks = re.findall(r'^([ \t]*<interface name="([^"]+)">.*?</interface>\n)', text, re.S | re.M)
    if not blocks:
        sys.exit(f"{src}: no <interface> found")
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f"/* Generated from {src.rsplit('/', 1)[-1]} by ipc/embed-xml.py: do not edit. */\n")
        f.write('#include "ipc/xml-data.h"\n\n')
        f.write("const IpcXmlInterface ipc_xml_interfaces[] = {\n")
        for block, name in blocks:
            f.write(f'        {{ "{name}",\n                {c_string(block)} }},\n')
        f.write("};\n\n")
        f.write(f"const size_t ipc_xml_n_interfaces = {len(blocks)};\n")


if __name__ == "__main__":
    main()
