#!/usr/bin/python3
"""Regenerate NAME.expected.json for every NAME.eml of this corpus with Dovecot as the
oracle: a private Dovecot (ternlib.PrivateDovecot: own dirs, a loopback port; needs root
and dovecot-imapd) gets each message by APPEND and answers FETCH (BODYSTRUCTURE BODY
ENVELOPE RFC822.SIZE) and BODY.PEEK[section] for HEADER, TEXT and every part of the
structure (N, N.MIME, and N.HEADER / N.TEXT of message/rfc822 parts), plus BODY[1]<0.10>.
Every section's bytes are checked to be a slice of the .eml before they are written.
    tests/integration/mime/make_expected.py [NAME.eml ...]"""
import base64
import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import ternlib  # noqa: E402


def paren_text(line, start):
    """The balanced '(...)' of line beginning at start (quoted strings and literals skipped)."""
    depth, i = 0, start
    while i < len(line):
        c = line[i:i + 1]
        if c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
            if depth == 0:
                return line[start:i + 1]
        elif c == b'"':
            i += 1
            while line[i:i + 1] != b'"':
                i += 2 if line[i:i + 1] == b"\\" else 1
        elif c == b"{":
            m = re.match(rb"\{(\d+)\}\r\n", line[i:])
            if m:
                i += m.end() + int(m.group(1))
                continue
        i += 1
    raise AssertionError("unbalanced: %r" % line[start:start + 200])


def item_text(line, name):
    m = re.search(rb" " + name.encode() + rb" \(", line)
    return paren_text(line, m.end() - 1).decode("utf-8", "replace")


def section_names(bs):
    """HEADER, TEXT and the sections of every part of a parsed BODYSTRUCTURE."""
    names = ["HEADER", "TEXT"]

    def multipart(parts, prefix):
        n = 0
        for child in parts:
            if not isinstance(child, list):
                break
            n += 1
            part(child, prefix + str(n))

    def part(p, name):
        names.extend([name, name + ".MIME"])
        if isinstance(p[0], list):
            multipart(p, name + ".")
        elif p[0].upper() == b"MESSAGE" and p[1].upper() == b"RFC822":
            names.extend([name + ".HEADER", name + ".TEXT"])
            inner = p[8]
            if isinstance(inner[0], list):
                multipart(inner, name + ".")
            else:
                names.append(name + ".1")

    if isinstance(bs[0], list):
        multipart(bs, "")
    else:
        names.append("1")
    return names


def fetch_section(raw, section, partial=""):
    """BODY.PEEK[section]<partial> of UID 1 as bytes (b"" for NIL)."""
    for u in raw.ok("UID FETCH 1 (BODY.PEEK[%s]%s)" % (section, partial)):
        if b" FETCH " in u:
            for k, v in ternlib.fetch_items(u).items():
                if k.startswith("BODY["):
                    return v or b""
    raise AssertionError("no FETCH answer for BODY[%s]" % section)


def main(paths):
    user, pw = "oracle@mime.test", "oracle-pw"
    dv = ternlib.PrivateDovecot({user: pw})
    try:
        dv.start()
        for n, path in enumerate(paths):
            eml = open(path, "rb").read()
            raw = ternlib.RawIMAP(dv.port)
            raw.login(user, pw)
            mbox = "M%d" % n
            raw.ok("CREATE %s" % mbox)
            raw.send("a0 APPEND %s {%d}\r\n" % (mbox, len(eml)))
            cont = raw.response()
            assert cont.startswith(b"+"), cont
            raw.send(eml + b"\r\n")
            st, _, tagged = raw.read_tagged("a0")
            assert st == "OK", tagged
            raw.ok("SELECT %s" % mbox)
            line = [u for u in raw.ok("UID FETCH 1 (BODYSTRUCTURE BODY ENVELOPE RFC822.SIZE)")
                    if b" FETCH " in u][0]
            items = ternlib.fetch_items(line)
            sections = {}
            for s in section_names(items["BODYSTRUCTURE"]):
                data = fetch_section(raw, s)
                if data and data not in eml:
                    raise AssertionError("%s: section %s is not a slice of the file: %r" % (path, s, data[:100]))
                sections[s] = base64.b64encode(data).decode()
            partial = fetch_section(raw, "1", "<0.10>")
            raw.close()
            out = {"bodystructure": item_text(line, "BODYSTRUCTURE"), "body": item_text(line, "BODY"),
                   "envelope": item_text(line, "ENVELOPE"), "size": int(items["RFC822.SIZE"]),
                   "sections": sections, "partial_1_0_10": base64.b64encode(partial).decode()}
            assert out["size"] == len(eml), (path, out["size"], len(eml))
            dest = path[:-len(".eml")] + ".expected.json"
            with open(dest, "w") as f:
                json.dump(out, f, indent=1, sort_keys=True)
                f.write("\n")
            print("%s: %s" % (os.path.basename(dest), out["bodystructure"][:150]))
    finally:
        dv.cleanup()


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "*.eml"))))
