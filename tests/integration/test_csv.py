#!/usr/bin/python3
"""CSV import and export in the guide's format (ch. 8.9, 8.10): ';' with ',' inside cells
(table 8.1), ',' with quoted multi-value cells (table 8.2); export writes ';'-separated
fields with ','-separated values; a file without a header row is refused."""
import datetime
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402

TABLE_8_1 = """Name;Password;FullName;Description;MailAddress;Groups
wsmith;VbD66op1;Winston Smith;Developer;wsmith;read-only,all
wsmith;Ahdpppu4;Winston Smith;Sales;wsmith,smith;sales, all
amonroe;SpoiuS158;Ada Monroe;GM's Assistant;amonroe,ada.monroe;all
psycho;pfgzInI1;Peter Sycho;General Manager;psycho,sycho;all,sales
"""

TABLE_8_2 = """Name,Password,FullName,Description,MailAddress,Groups
wsmith,VbD66op1,Winston Smith,Developer,wsmith,"read, all"
amonroe,SpoiuS158,Ada Monroe,GM's Assistant,"amonroe,ada.monroe","all"
psycho,pfgzInI1,Peter Sycho,General Manager,"psycho,sycho","all,sales"
"""

APOSTROPHES = """Name,FullName,MailAddress
silly,Stephen Illy,'silly,s.illy'
"""

NO_HEADER = """silly;VbD66op1;Stephen Illy;silly
ewood;Ahdpppu4; Edward Wood;ewood,wood
"""


class CsvTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = ternlib.Node(name="csv1", domain="csv.test")
        try:
            cls.node.start()
            for d in ("semi.test", "comma.test", "quote.test", "nohead.test"):
                cls.node.ctl("domain", "add", d)
            for d in ("semi.test", "comma.test"):
                for g in ("all", "sales", "read-only", "read"):
                    cls.node.ctl("group", "add", "%s@%s" % (g, d))
        except Exception:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def import_csv(self, domain, text):
        path = self.node.write_file("import-%s.csv" % domain, text)
        r = self.node.run_ctl("user", "import", domain, path)
        import json
        return r, (json.loads(r.stdout) if r.stdout.strip() else None)

    def check_users(self, domain):
        n = self.node
        users = ternlib.by_key(n.ctl("user", "list", domain), "name")
        for name in ("wsmith", "amonroe", "psycho"):
            self.assertIn(name, users)
        self.assertEqual(users["amonroe"]["full_name"], "Ada Monroe")
        self.assertEqual(users["amonroe"]["description"], "GM's Assistant")
        self.assertIn("ada.monroe", users["amonroe"]["addresses"])
        self.assertIn("sycho", users["psycho"]["addresses"])
        members = n.ctl("group", "show", "all@" + domain)["members"]
        for name in ("wsmith", "amonroe", "psycho"):
            self.assertIn("%s@%s" % (name, domain), members)
        self.assertIn("psycho@" + domain, n.ctl("group", "show", "sales@" + domain)["members"])
        return users

    def test_semicolons_table_8_1(self):
        r, res = self.import_csv("semi.test", TABLE_8_1)
        # The second wsmith line is a duplicate: reported, the rest imported.
        self.assertIsNotNone(res, r.stderr)
        self.assertEqual(res["created"], 3, res)
        self.assertEqual(len(res["errors"]), 1, res)
        self.assertIn("3", res["errors"][0])
        self.assertEqual(r.returncode, 1)
        users = self.check_users("semi.test")
        self.assertEqual(users["wsmith"]["description"], "Developer")

    def test_commas_table_8_2(self):
        r, res = self.import_csv("comma.test", TABLE_8_2)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(res, {"created": 3, "errors": []})
        self.check_users("comma.test")
        self.assertIn("wsmith@comma.test", self.node.ctl("group", "show", "read@comma.test")["members"])

    def test_apostrophes(self):
        r, res = self.import_csv("quote.test", APOSTROPHES)
        self.assertEqual(r.returncode, 0, r.stderr)
        silly = self.node.ctl("user", "show", "silly@quote.test")
        self.assertIn("s.illy", silly["addresses"])

    def test_no_header_refused(self):
        r, _ = self.import_csv("nohead.test", NO_HEADER)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.strip())
        self.assertEqual(self.node.ctl("user", "list", "nohead.test"), [])

    def test_export(self):
        n = self.node
        if not any(u["name"] == "amonroe" for u in n.ctl("user", "list", "comma.test")):
            self.import_csv("comma.test", TABLE_8_2)
        # Default file name in the current directory.
        day = datetime.date.today().strftime("%Y-%m-%d")
        r = subprocess.run([n.ternctl, "--data", n.data, "user", "export", "comma.test"], cwd=n.dir,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(n.dir, "users_comma.test_%s.csv" % day)
        self.assertTrue(os.path.exists(path), os.listdir(n.dir))
        text = open(path, encoding="utf-8").read()
        # "-" writes the same to stdout.
        r = n.run_ctl("user", "export", "comma.test", "-", json_out=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, text)

        lines = [l for l in text.splitlines() if l.strip()]
        header = lines[0].split(";")
        self.assertIn("Name", header)
        self.assertIn("FullName", header)
        self.assertIn("MailAddress", header)
        rows = [dict(zip(header, l.split(";"))) for l in lines[1:]]
        by_name = {r["Name"]: r for r in rows}
        self.assertIn("amonroe", by_name)
        self.assertEqual(by_name["amonroe"]["FullName"], "Ada Monroe")
        addrs = [a.strip() for a in by_name["amonroe"]["MailAddress"].strip('"').split(",")]
        self.assertIn("ada.monroe", addrs)
        self.assertNotIn("SpoiuS158", text)   # never a password

        # What was exported imports again into another domain.
        n.ctl("domain", "add", "again.test")
        for g in ("all", "sales", "read-only", "read"):
            n.ctl("group", "add", "%s@again.test" % g)
        r, res = self.import_csv("again.test", text)
        self.assertEqual(r.returncode, 0, r.stderr)
        names = {u["name"] for u in n.ctl("user", "list", "again.test")}
        self.assertTrue({"wsmith", "amonroe", "psycho"} <= names, names)


if __name__ == "__main__":
    ternlib.main()
