"""test_theory: THEORY.md stays true when the code moves.

Every `file:function` reference must name a function (or macro, struct, Python def/class)
that the file defines; every repository path and every results/ file it cites must exist;
every results/theory/ file it cites must be one that make theory (analysis/theory/) writes
and must hold what the document reads from it; the text files and THEORY.md's generated
blocks must be what analysis/theory/render.py makes of the committed data
(results/theory/data/); no placeholder may be left. Static checks: no server is started.
"""
import os
import re
import unittest

from analysis.theory import render
from harness import ROOT
from pylib import markers

DOC = os.path.join(ROOT, "THEORY.md")
THEORY_DIR = os.path.join(ROOT, "analysis", "theory")
RESULTS = os.path.join(ROOT, "results", "theory")
SOURCE_DIRS = ("common", "servers", "clients", "loadgen", "impair")

REF = re.compile(r"`([\w./-]+\.(?:c|h|py)):(\w+)`")
PATH = re.compile(r"`((?:results|servers|clients|common|loadgen|impair|analysis|tests|scripts)/"
                  r"[\w./-]+|[A-Z]+\.md)`")
LINK = re.compile(r"\]\(([\w./-]+\.md)\)")
MACRO = re.compile(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`")
TEST_NAME = re.compile(r"`(test_\w+)`")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def defines(path, name):
    """Whether the file at path defines name: a C function (a definition or prototype line
    that starts with its type), macro, struct or enum, or a Python def/class."""
    text = read(path)
    n = re.escape(name)
    if path.endswith(".py"):
        return re.search(rf"^\s*(?:def|class)\s+{n}\b", text, re.M) is not None
    patterns = [
        rf"^[A-Za-z_][\w \t\*]*?\b{n}\s*\([^;]*$",  # function definition (no ';' on the line)
        rf"^#define\s+{n}\b",
        rf"^(?:struct|enum|union)\s+{n}\b",
    ]
    if path.endswith(".h"):
        patterns.append(rf"^[A-Za-z_][\w \t\*]*?\b{n}\s*\(")  # prototype
    return any(re.search(p, text, re.M) for p in patterns)


class TheoryDocTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = read(DOC)

    def test_every_function_reference_exists(self):
        refs = sorted(set(REF.findall(self.doc)))
        self.assertGreater(len(refs), 40, "the reference pattern found almost nothing")
        missing = []
        for path, name in refs:
            full = os.path.join(ROOT, path)
            if not os.path.isfile(full):
                missing.append(f"{path}:{name} (no such file)")
            elif not defines(full, name):
                missing.append(f"{path}:{name} (not defined there)")
        self.assertEqual(missing, [], "THEORY.md points to code that is not there")

    def test_every_cited_path_exists(self):
        paths = sorted(set(PATH.findall(self.doc)) | set(LINK.findall(self.doc)))
        self.assertGreater(len(paths), 20)
        missing = [p for p in paths if not os.path.exists(os.path.join(ROOT, p))]
        self.assertEqual(missing, [], "THEORY.md cites files that do not exist")

    def test_results_theory_files_are_written_by_make_theory(self):
        src = "".join(read(os.path.join(THEORY_DIR, f)) for f in sorted(os.listdir(THEORY_DIR))
                      if f.endswith(".py"))
        cited = sorted({p for p in PATH.findall(self.doc) if p.startswith("results/theory/")})
        self.assertGreaterEqual(len(cited), 6)
        unmade = [p for p in cited if f'"{os.path.basename(p)}"' not in src]
        self.assertEqual(unmade, [], "cited results/theory files that make theory never writes")
        self.assertRegex(read(os.path.join(ROOT, "Makefile")),
                         r"(?m)^theory:[^\n]*\n(?:\t[^\n]*\n)*\t[^\n]*analysis/theory/theory\.py")

    def test_macros_and_test_names_exist(self):
        code = "".join(read(os.path.join(ROOT, d, f)) for d in SOURCE_DIRS
                       for f in sorted(os.listdir(os.path.join(ROOT, d)))
                       if f.endswith((".c", ".h")))
        macros = sorted(set(MACRO.findall(self.doc)))
        self.assertGreater(len(macros), 3)
        self.assertEqual([m for m in macros if m not in code], [],
                         "THEORY.md names constants the code does not use")
        tests = "".join(read(os.path.join(ROOT, "tests", "integration", f))
                        for f in os.listdir(os.path.join(ROOT, "tests", "integration"))
                        if f.endswith(".py") and f != "test_theory.py")
        names = sorted(set(TEST_NAME.findall(self.doc)))
        self.assertEqual([t for t in names if f"def {t}(" not in tests], [])

    def test_generated_blocks_match_results(self):
        want = render.render_blocks(RESULTS)
        self.assertEqual(len(want), 9)
        have = markers.read_blocks(self.doc)
        for name, body in want.items():
            self.assertIn(name, have, f"THEORY.md lost its {name} block")
            self.assertEqual(have[name], body,
                             f"{name}: THEORY.md disagrees with results/theory/ "
                             "(run: python3 analysis/theory/theory.py --update-doc)")

    def test_bench_blocks_match_results(self):
        """Section 2.3's measured table is rendered from the committed make bench run
        (results/rtt.csv), or says that the run has none."""
        want = render.bench_blocks(os.path.dirname(RESULTS))
        self.assertEqual(sorted(want), ["theory-rtt"])
        have = markers.read_blocks(self.doc)
        for name, body in want.items():
            self.assertIn(name, have, f"THEORY.md lost its {name} block")
            self.assertEqual(have[name], body, f"{name}: THEORY.md disagrees with results/ "
                             "(run: python3 analysis/theory/theory.py --update-doc)")
        if os.path.exists(os.path.join(ROOT, "results", "rtt.csv")):
            self.assertIn("| set-up p50 (round trips) |", have["theory-rtt"])

    def test_text_files_are_rendered_from_the_data(self):
        want = render.render_texts(RESULTS)
        self.assertEqual(sorted(want), sorted(f for f in os.listdir(RESULTS) if f.endswith(".txt")),
                         "results/theory/*.txt and the files render.py makes differ")
        for name, text in want.items():
            self.assertEqual(read(os.path.join(RESULTS, name)), text,
                             f"results/theory/{name} is not what its data gives")

    def test_section_2_quotes_the_committed_run(self):
        """Section 2's benchmark figures are typed prose: they name the run they come from, and
        that must be the run results/ holds (after a new make bench, re-read them from
        `theory.py --bench-figures` and update the date)."""
        m = re.search(r"^date_utc: (.+)$", read(os.path.join(ROOT, "results", "machine.txt")), re.M)
        self.assertIsNotNone(m, "results/machine.txt has no date_utc")
        self.assertIn(f"the `make bench` of {m.group(1).strip()} UTC", self.doc)

    def test_event_loop_figures_quote_the_committed_run(self):
        """Sections 3.1 and 3.5 quote the threads-or-event-loop figures of the run results/
        holds, word for word as `theory.py --bench-figures` prints them; while that run has
        no tcp-epoll rows they say so, and once it has, they may no longer."""
        quotes = render.event_loop_quotes(os.path.join(ROOT, "results"))
        flat = " ".join(self.doc.split())
        if quotes is None:
            self.assertIn(render.EVENT_LOOP_PENDING, flat)
            return
        self.assertNotIn(render.EVENT_LOOP_PENDING, flat,
                         "results/ has tcp-epoll rows now: quote them (theory.py --bench-figures)")
        for sec, sentence in quotes.items():
            part = flat[flat.index(f"### {sec} "):]
            part = part[:re.search(r" #{2,4} ", part).start()]  # to the next heading
            self.assertIn(" ".join(sentence.split()), part, f"section {sec} does not quote "
                          "results/ (run: python3 analysis/theory/theory.py --bench-figures)")

    def test_no_placeholder_left(self):
        left = re.findall(r"\S*(?:TODO|TBD|XXX)\S*", self.doc)
        self.assertEqual(left, [], "THEORY.md has unfilled numbers")

    def test_captures_hold_what_the_document_reads(self):
        tcp = read(os.path.join(ROOT, "results", "theory", "tcp_session.txt"))
        rows = re.findall(r"(?m)^\s*\d+\s+[\d.]+\s+(client|server)\s+tcp\s+(\S+)", tcp)
        flags = [f for _, f in rows]
        self.assertEqual(flags[:3], ["SYN", "SYN,ACK", "ACK"], "no three-way handshake")
        self.assertEqual([s for s, f in rows if "FIN" in f], ["server", "client"],
                         "the server's FIN, then the client's, as section 1.1 says")
        self.assertIn("HELLO alice", tcp)
        udp = read(os.path.join(ROOT, "results", "theory", "udp_session.txt"))
        first = re.search(r"(?m)^\s*1\s+[\d.]+\s+client\s+udp\s+-\s+.*HELLO alice", udp)
        self.assertIsNotNone(first, "the first UDP datagram is the HELLO: no handshake")
        # the header table of section 1.1 against results/theory/headers.txt
        hdr = read(os.path.join(ROOT, "results", "theory", "headers.txt"))
        for name, ip, l4, total in (("TCP SYN", 20, 40, 60), ("TCP data segment", 20, 32, 52),
                                    ("TCP pure ACK", 20, 32, 52), ("UDP datagram", 20, 8, 28)):
            self.assertRegex(hdr, rf"{name}: ip_hdr={ip} l4_hdr={l4} headers={total} ")
            self.assertRegex(self.doc, rf"\| {ip} \| {l4} \| {total} \|")
        loss = read(os.path.join(ROOT, "results", "theory", "loss_ss.txt"))
        for cc in ("reno", "bbr"):
            for pct in (0, 2, 10):
                self.assertRegex(loss, rf"(?m)^\s*{cc}\s+{pct}\s+\d+")
        flow = read(os.path.join(ROOT, "results", "theory", "flow_control.txt"))
        windows = [int(r) for r in re.findall(r"(?m)^\s*[\d.]+\s+\d+\s+\d+\s+\d+\s+(\d+)\s",
                                              flow)]
        self.assertIn(0, windows, "the reader's window never closed")
        self.assertIn("[WARN] Cliente reader removido: consumidor lento", flow)
        # the path capture (section 2.3): the client's view of each exchange, in round trips
        data = render.load(RESULTS, "path")
        rtt = 2 * data["delay_ms"]
        tcp = dict(render.exchanges(data["tcp"]["packets"]))
        self.assertEqual([r["flags"] for r in data["tcp"]["packets"][:3]],
                         ["SYN", "SYN,ACK", "ACK"])
        self.assertIn("mss 1460", data["tcp"]["packets"][0]["opts"], "an Ethernet path's MSS")
        self.assertTrue(rtt <= tcp["SYN-ACK"] < 2 * rtt, tcp)
        self.assertTrue(rtt <= tcp["HELLO"] < 2 * rtt, "TCP's HELLO leaves after one round trip")
        self.assertTrue(2 * rtt <= tcp["WELCOME"] < 3 * rtt, "and WELCOME comes after two")
        udp = dict(render.exchanges(data["udp"]["packets"]))
        self.assertEqual(udp["HELLO"], 0, "UDP's first packet is the HELLO")
        self.assertTrue(rtt <= udp["WELCOME"] < 2 * rtt, "UDP's WELCOME after one round trip")
        mem = read(os.path.join(ROOT, "results", "theory", "memory.txt"))
        self.assertRegex(mem, r"(?m)^\s+Threads\s+1\s+1001\s+2001\b",
                         "tcp_server: one thread per client")
        self.assertRegex(mem, r"(?m)^\s+Threads\s+4\s+4\s+4\b", "udp_server: 4 threads")


if __name__ == "__main__":
    unittest.main()
