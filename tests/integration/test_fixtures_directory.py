#!/usr/bin/python3
"""Self-test of tests/fixtures/dirfixture.py (issue 5): the slapd and MIT KDC fixtures the
directory tests stand on. Both slapd instances and the KDC start; the service account finds
alice with memberOf in the AD-like tree and the sales group by memberUid in the OD tree;
anonymous reads are refused; LDAPS and StartTLS work with the fixture's CA and fail with
another CA; the change helpers add, modify (with a new uSNChanged) and delete entries on
both instances; kinit works with alice's password and fails with a wrong one, the expired
and the missing principal are refused, a ticket for imap/localhost can be got; the keytab
holds the service principals; kill and restart of the primary keeps port and data; stop
leaves no process and no dir; the CLI start/ctl/stop works the same way."""
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import dirfixture  # noqa: E402
from dirfixture import FixtureError  # noqa: E402

CLI = os.path.join(HERE, "..", "fixtures", "dirfixture.py")


def procs_in(d):
    """Live (non-zombie) processes whose command line names d."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and dirfixture._alive(int(name)) and dirfixture._belongs(int(name), d):
            out.append(int(name))
    return out


def tls_env(ca):
    env = dict(os.environ, LDAPTLS_CACERT=ca, LDAPTLS_REQCERT="demand")
    env.pop("LDAPTLS_CACERTDIR", None)
    return env


class FixtureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = dirfixture.start()

    @classmethod
    def tearDownClass(cls):
        d = cls.fx.dir
        cls.fx.stop()
        assert not d.exists() and not procs_in(d)

    def test_service_account_sees_alice_with_memberof(self):
        u = dirfixture.USERS["alice"]
        for inst in (self.fx.primary, self.fx.backup):
            ents = inst.search(dirfixture.AD_BASE, "(sAMAccountName=alice)",
                               ["sAMAccountName", "proxyAddresses", "memberOf",
                                "userAccountControl", "uSNChanged", "ternQuotaStorage"])
            self.assertEqual(len(ents), 1, inst.name)
            e = ents[0]
            self.assertEqual(e["dn"], u["ad_dn"])
            self.assertEqual(sorted(e["memberOf"]), [dirfixture.GROUPS["sales"]["ad_dn"],
                                                     dirfixture.GROUPS["staff"]["ad_dn"]])
            self.assertIn("SMTP:alice@example.test", e["proxyAddresses"])
            self.assertIn("smtp:ally@example.test", e["proxyAddresses"])
            self.assertEqual(e["userAccountControl"], ["512"])
            self.assertEqual(e["ternQuotaStorage"], ["100"])
        carol = self.fx.primary.search(dirfixture.AD_BASE, "(sAMAccountName=carol)",
                                       ["userAccountControl"])
        self.assertEqual(carol[0]["userAccountControl"], ["514"])

    def test_od_tree(self):
        groups = self.fx.primary.search(dirfixture.OD_BASE, "(&(objectClass=posixGroup)"
                                        "(memberUid=bob))", ["cn"])
        self.assertEqual([g["cn"] for g in groups], [["sales"]])
        bob = self.fx.primary.search(dirfixture.OD_BASE, "(uid=bob)",
                                     ["mail", "ternForward", "ternForwardKeepCopy"])[0]
        self.assertEqual(bob["mail"], ["bob@example.test"])
        self.assertEqual(bob["ternForward"], ["bob@remote.test"])
        self.assertEqual(bob["ternForwardKeepCopy"], ["TRUE"])

    def test_anonymous_and_wrong_password_refused(self):
        with self.assertRaises(FixtureError):
            self.fx.primary.search(dirfixture.AD_BASE, "(sAMAccountName=alice)", bind_dn="")
        with self.assertRaises(FixtureError) as cm:
            self.fx.primary.search(dirfixture.OD_BASE, "(uid=alice)",
                                   bind_dn=dirfixture.OD_SERVICE_DN, password="wrong")
        self.assertIn("Invalid credentials", str(cm.exception))
        # A user's own password binds (the "LDAP bind" authentication method).
        ents = self.fx.primary.search(dirfixture.USERS["alice"]["od_dn"], scope="base",
                                      bind_dn=dirfixture.USERS["alice"]["od_dn"],
                                      password=dirfixture.USERS["alice"]["password"])
        self.assertEqual(len(ents), 1)

    def test_ldaps_and_starttls_with_fixture_ca_only(self):
        p = self.fx.primary
        ok = p.search(dirfixture.AD_BASE, "(sAMAccountName=bob)", ["cn"], uri=p.ldaps_uri,
                      env=tls_env(self.fx.tls["ca_file"]))
        self.assertEqual(ok[0]["cn"], ["Bob Builder"])
        with self.assertRaises(FixtureError):
            p.search(dirfixture.AD_BASE, "(sAMAccountName=bob)", ["cn"], uri=p.ldaps_uri,
                     env=tls_env(self.fx.tls["wrong_ca_file"]))
        argv = ["/usr/bin/ldapsearch", "-ZZ", "-LLL", "-x", "-H", p.ldap_uri, "-D",
                dirfixture.AD_SERVICE_DN, "-w", dirfixture.SERVICE_PASSWORD, "-b",
                dirfixture.AD_BASE, "(sAMAccountName=bob)", "cn"]
        good = subprocess.run(argv, env=tls_env(self.fx.tls["ca_file"]), capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(good.returncode, 0, good.stderr)
        self.assertIn("cn: Bob Builder", good.stdout)
        bad = subprocess.run(argv, env=tls_env(self.fx.tls["wrong_ca_file"]),
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(bad.returncode, 0)

    def test_change_helpers_reach_both_instances(self):
        fx = self.fx
        dn = "cn=Gina Linetti,cn=Users,dc=ad,dc=test"
        fx.add_entry(dn, {"objectClass": ["top", "person", "organizationalPerson", "user"],
                          "cn": "Gina Linetti", "sn": "Linetti", "sAMAccountName": "gina",
                          "mail": "gina@example.test", "userAccountControl": "512"})
        fx.modify_entry(dirfixture.GROUPS["sales"]["ad_dn"], add={"member": dn})
        for inst in (fx.primary, fx.backup):
            g = inst.search(dirfixture.AD_BASE, "(sAMAccountName=gina)",
                            ["uSNChanged", "memberOf"])[0]
            self.assertEqual(g["memberOf"], [dirfixture.GROUPS["sales"]["ad_dn"]])
            first = int(g["uSNChanged"][0])
            self.assertGreaterEqual(first, 2000)
        fx.modify_entry(dn, replace={"userAccountControl": "514"})
        for inst in (fx.primary, fx.backup):
            g = inst.search(dirfixture.AD_BASE, "(sAMAccountName=gina)",
                            ["uSNChanged", "userAccountControl"])[0]
            self.assertEqual(g["userAccountControl"], ["514"])
            self.assertGreater(int(g["uSNChanged"][0]), first)
        fx.delete_entry(dn)
        for inst in (fx.primary, fx.backup):
            self.assertEqual(inst.search(dirfixture.AD_BASE, "(sAMAccountName=gina)"), [])
        sales = fx.primary.search(dirfixture.GROUPS["sales"]["ad_dn"], scope="base",
                                  attrs=["member"])[0]
        self.assertNotIn(dn, sales["member"])

    def test_kerberos(self):
        kdc = self.fx.kdc
        cc = str(kdc.dir / "cc-test")
        self.assertEqual(kdc.kinit("alice", dirfixture.USERS["alice"]["password"], cc)
                         .returncode, 0)
        self.assertIn("alice@EXAMPLE.TEST", kdc.klist(cc).stdout)
        env = dict(os.environ, **kdc.env(cc))
        kvno = subprocess.run(["/usr/bin/kvno", "imap/localhost"], env=env,
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(kvno.returncode, 0, kvno.stderr)
        bad = kdc.kinit("alice", "not-her-password", cc)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("Password incorrect", bad.stderr)
        exp = kdc.kinit("dave", dirfixture.USERS["dave"]["password"], cc)
        self.assertIn("expired", exp.stderr)
        self.assertIn("not found", kdc.kinit("erin", "whatever", cc).stderr)
        self.assertEqual(sorted(kdc.keytab_principals()),
                         sorted(p + "@EXAMPLE.TEST" for p in dirfixture.SERVICE_PRINCIPALS))

    def test_kill_and_restart_backup(self):
        b = self.fx.backup
        port, pid = b.ldap_port, b.pid
        b.kill()
        self.assertFalse(b.running())
        self.assertFalse(dirfixture._alive(pid))
        with self.assertRaises(FixtureError):
            b.search(dirfixture.AD_BASE, "(sAMAccountName=alice)")
        self.assertTrue(self.fx.primary.running())
        b.start()
        self.assertEqual(b.ldap_port, port)
        self.assertEqual(len(b.search(dirfixture.AD_BASE, "(sAMAccountName=alice)")), 1)


class CliTest(unittest.TestCase):
    def test_cli_start_ctl_stop(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="tern-dirfx-cli-")
        try:
            out = subprocess.run([CLI, "start", d, "--no-backup"], capture_output=True,
                                 text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
            info = json.loads(out.stdout)
            self.assertIsNone(info["backup"])
            self.assertTrue(info["primary"]["running"] and info["kdc"]["running"])
            fx = dirfixture.attach(d)
            self.assertEqual(len(fx.primary.search(dirfixture.OD_BASE, "(uid=alice)")), 1)
            out = subprocess.run([CLI, "ctl", d, "kdc", "stop"], capture_output=True, text=True,
                                 timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertFalse(json.loads(out.stdout)["kdc"]["running"])
            self.assertTrue(procs_in(d))
        finally:
            subprocess.run([CLI, "stop", d], timeout=60)
        self.assertFalse(os.path.exists(d))
        self.assertEqual(procs_in(d), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
