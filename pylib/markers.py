"""markers: generated blocks in a document. A block is

    <!-- BEGIN GENERATED: name -->
    body (ends with a newline)
    <!-- END GENERATED: name -->

Scripts rewrite only what is between the markers (the prose around them is hand-written),
and tests read the blocks back to compare them with what the data gives.
"""
import os
import re

_BLOCK = re.compile(r"<!-- BEGIN GENERATED: (\S+) -->\n(.*?)<!-- END GENERATED: \1 -->", re.S)


def block(name, body):
    """The block as it stands in a document, markers included, ending with a newline."""
    return f"<!-- BEGIN GENERATED: {name} -->\n{body}<!-- END GENERATED: {name} -->\n"


def read_blocks(text):
    """{name: body} of every block in text."""
    return dict(_BLOCK.findall(text))


def replace(text, bodies):
    """text with the body of each named block replaced; returns (text, names replaced, one
    entry per block). Names without markers in text are left out: the prose decides where
    blocks go."""
    done = []
    for name, body in bodies.items():
        rx = re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(name)} -->\n).*?"
                        rf"(<!-- END GENERATED: {re.escape(name)} -->)", re.S)
        text, k = rx.subn(lambda m, b=body: m.group(1) + b + m.group(2), text)
        done += [name] * k
    return text, done


def update_file(path, bodies):
    """replace() on the file at path, written atomically; returns the names replaced."""
    with open(path, encoding="utf-8") as f:
        text, done = replace(f.read(), bodies)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return done
