#!/usr/bin/python3
"""CardDAV (RFC 6352, issue 7) with raw requests (python3-caldav has little CardDAV):
discovery of the addressbook home from /.well-known/carddav and the principal, the default
"contacts" address book and the domain's GAL; PUT/GET/DELETE of vCards with ETags,
addressbook-multiget, addressbook-query (text-match on FN and EMAIL), sync-collection after
add/modify/delete, extended MKCOL of a new address book; the GAL lists the published users
of the domain and refuses writes; invalid vCards are refused with valid-address-data; a
vdirsyncer two-way round trip against a filesystem storage."""
import os
import shutil
import sys
import tempfile
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import DavConn, multistatus, vcard, NS_CARDDAV  # noqa: E402

D = "example.test"
ALICE = "alice@" + D
BOB = "bob@" + D
HIDDEN = "hidden@" + D
PW = ternlib.USER_PASSWORD
ADDR_DATA = "{%s}address-data" % NS_CARDDAV
VCARD_CT = {"Content-Type": "text/vcard; charset=utf-8"}


def abhome(user):
    local, dom = user.split("@")
    return "/addressbooks/%s/%s/" % (dom, local)


def query_body(prop, text, match_type="contains"):
    return ('<?xml version="1.0" encoding="utf-8"?>\n<card:addressbook-query xmlns:d="DAV:" '
            'xmlns:card="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><card:address-data/></d:prop>'
            '<card:filter><card:prop-filter name="%s"><card:text-match collation="i;unicode-casemap" '
            'match-type="%s">%s</card:text-match></card:prop-filter></card:filter></card:addressbook-query>'
            % (prop, match_type, text))


def sync_body(token):
    return ('<?xml version="1.0" encoding="utf-8"?>\n<d:sync-collection xmlns:d="DAV:">'
            '<d:sync-token>%s</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop>'
            '</d:sync-collection>' % (token or ""))


class CardDavTest(ternlib.NodeTestCase):
    NODE = "card1"
    DOMAIN = D

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            ternlib.add_users_fast(cls.node, [ALICE, BOB], {ALICE: "Alice Archer", BOB: "Bob Builder"})
            cls.node.ctl("user", "add", HIDDEN, "--password-file", cls.node.userpw,
                         "--full-name", "Hidden Hal", "--no-publish-in-gal")
            ternlib.wait_dav(cls.node)
        except BaseException:
            cls.node.cleanup()
            raise

    def conn(self, user=ALICE):
        c = DavConn(self.node, user)
        self.addCleanup(c.close)
        return c

    def new_book(self, c, name=None):
        """An address book made with extended MKCOL (RFC 5689); its path."""
        name = name or "book-" + uuid.uuid4().hex[:8]
        path = abhome(ALICE) + name + "/"
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<d:mkcol xmlns:d="DAV:" '
                'xmlns:card="urn:ietf:params:xml:ns:carddav"><d:set><d:prop><d:resourcetype><d:collection/>'
                '<card:addressbook/></d:resourcetype><d:displayname>%s</d:displayname></d:prop></d:set></d:mkcol>'
                % name)
        r = c.request("MKCOL", path, body)
        self.assertEqual(r.status, 201, r)
        return path

    def test_discovery(self):
        c = self.conn()
        r = c.propfind("/.well-known/carddav", ["d:current-user-principal"])
        self.assertIn(r.status, (301, 303, 307, 308), r)
        loc = urllib.parse.urlsplit(r.header("Location")).path
        r = c.propfind(loc, ["d:current-user-principal"])
        if r.status in (301, 302, 303, 307, 308):
            loc = urllib.parse.urlsplit(r.header("Location")).path
            r = c.propfind(loc, ["d:current-user-principal"])
        p = list(multistatus(r).values())[0]["props"]
        principal = ternlib.href_text(p["{DAV:}current-user-principal"])
        self.assertEqual(principal, "/dav/principals/%s/alice/" % D)
        r = c.propfind(principal, ["card:addressbook-home-set"])
        p = list(multistatus(r).values())[0]["props"]
        self.assertEqual(ternlib.href_text(p["{%s}addressbook-home-set" % NS_CARDDAV]), abhome(ALICE))
        ms = multistatus(c.propfind(abhome(ALICE), ["d:resourcetype", "d:displayname",
                                                     "card:supported-address-data"], depth=1))
        books = {h for h, e in ms.items()
                 if e["props"].get("{DAV:}resourcetype") is not None
                 and e["props"]["{DAV:}resourcetype"].find("{%s}addressbook" % NS_CARDDAV) is not None}
        self.assertIn(abhome(ALICE) + "contacts/", books, list(ms))
        self.assertIn(abhome(ALICE) + "gal/", books, list(ms))
        r = c.request("OPTIONS", abhome(ALICE) + "contacts/")
        self.assertIn("addressbook", r.header("DAV", "").lower(), r.headers)

    def test_contacts_crud_query_multiget(self):
        c = self.conn()
        book = self.new_book(c)
        cards = {
            "jane.vcf": vcard("jane-1", "Jane Smith", "jane@smith.example", "+1 555 0100"),
            "john.vcf": vcard("john-1", "John Smithers", "john@corp.example"),
            "zoe.vcf": vcard("zoe-1", "Zoe Zed", "zoe@zed.example", version="4.0"),
        }
        etags = {}
        for name, text in cards.items():
            r = c.request("PUT", book + name, text, dict(VCARD_CT, **{"If-None-Match": "*"}))
            self.assertEqual(r.status, 201, "%s: %r" % (name, r))
            g = c.request("GET", book + name)
            self.assertEqual(g.status, 200)
            self.assertIn("text/vcard", g.header("Content-Type", ""))
            self.assertIn("FN:" + text.split("FN:")[1].split("\r\n")[0], g.text())
            etags[name] = g.header("ETag")
            self.assertTrue(etags[name] and etags[name].startswith('"'), g.headers)
        ms = multistatus(c.propfind(book, ["d:getetag", "d:getcontenttype"], depth=1))
        self.assertEqual({h for h in ms if h != book}, {book + n for n in cards})
        for n in cards:
            self.assertEqual(ms[book + n]["props"]["{DAV:}getetag"].text, etags[n])
        # query: FN contains "smith" (case-insensitive) -> Jane and John
        ms = multistatus(c.report(book, query_body("FN", "smith")))
        self.assertEqual(set(ms), {book + "jane.vcf", book + "john.vcf"})
        self.assertIn("BEGIN:VCARD", ms[book + "jane.vcf"]["props"][ADDR_DATA].text)
        # EMAIL ends with zed.example -> Zoe
        ms = multistatus(c.report(book, query_body("EMAIL", "zed.example", "ends-with")))
        self.assertEqual(set(ms), {book + "zoe.vcf"})
        ms = multistatus(c.report(book, query_body("FN", "nobody-at-all")))
        self.assertEqual(ms, {})
        # multiget of two plus a missing href
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<card:addressbook-multiget xmlns:d="DAV:" '
                'xmlns:card="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><card:address-data/></d:prop>'
                '<d:href>%sjane.vcf</d:href><d:href>%szoe.vcf</d:href><d:href>%snone.vcf</d:href>'
                '</card:addressbook-multiget>' % (book, book, book))
        ms = multistatus(c.report(book, body))
        self.assertIn("UID:jane-1", ms[book + "jane.vcf"]["props"][ADDR_DATA].text)
        self.assertIn("UID:zoe-1", ms[book + "zoe.vcf"]["props"][ADDR_DATA].text)
        self.assertEqual(ms[book + "none.vcf"]["status"], 404)
        # modify with If-Match; a stale one is 412
        new = cards["jane.vcf"].replace("Jane Smith", "Jane Smith-Jones")
        self.assertEqual(c.request("PUT", book + "jane.vcf", new, dict(VCARD_CT, **{"If-Match": '"stale"'})).status, 412)
        r = c.request("PUT", book + "jane.vcf", new, dict(VCARD_CT, **{"If-Match": etags["jane.vcf"]}))
        self.assertIn(r.status, (200, 204), r)
        self.assertIn("Smith-Jones", c.request("GET", book + "jane.vcf").text())
        # the same UID under another name: no-uid-conflict
        r = c.request("PUT", book + "jane-copy.vcf", new, VCARD_CT)
        self.assertIn(r.status, (403, 409), r)
        self.assertIn("{%s}no-uid-conflict" % NS_CARDDAV, ternlib.dav_error_elements(r), r)
        # delete
        self.assertIn(c.request("DELETE", book + "john.vcf").status, (200, 204))
        self.assertEqual(c.request("GET", book + "john.vcf").status, 404)
        # delete the whole book
        self.assertIn(c.request("DELETE", book).status, (200, 204))
        self.assertEqual(c.propfind(book, ["d:resourcetype"]).status, 404)

    def test_default_contacts_and_sync(self):
        c = self.conn(BOB)
        book = abhome(BOB) + "contacts/"
        r = c.report(book, sync_body(None))
        ms = multistatus(r)
        self.assertEqual({h for h in ms if h != book}, set(), r)
        t0 = ternlib.sync_token_of(r)
        self.assertTrue(t0, r)
        for n in ("a", "b"):
            r = c.request("PUT", book + n + ".vcf", vcard("sync-" + n, "Person " + n.upper()), VCARD_CT)
            self.assertEqual(r.status, 201, r)
        r = c.report(book, sync_body(t0))
        ms = multistatus(r)
        self.assertEqual(set(ms), {book + "a.vcf", book + "b.vcf"}, r)
        t1 = ternlib.sync_token_of(r)
        self.assertNotEqual(t0, t1)
        # nothing since t1
        r = c.report(book, sync_body(t1))
        self.assertEqual(multistatus(r), {}, r)
        self.assertEqual(ternlib.sync_token_of(r), t1)
        # modify a, delete b, add c
        r = c.request("PUT", book + "a.vcf", vcard("sync-a", "Person A2"), VCARD_CT)
        self.assertIn(r.status, (200, 204), r)
        self.assertIn(c.request("DELETE", book + "b.vcf").status, (200, 204))
        self.assertEqual(c.request("PUT", book + "c.vcf", vcard("sync-c", "Person C"), VCARD_CT).status, 201)
        r = c.report(book, sync_body(t1))
        ms = multistatus(r)
        self.assertEqual(set(ms), {book + "a.vcf", book + "b.vcf", book + "c.vcf"}, r)
        self.assertEqual(ms[book + "b.vcf"]["status"], 404, r)
        self.assertIn("{DAV:}getetag", ms[book + "a.vcf"]["props"])
        self.assertEqual(ms[book + "a.vcf"]["props"]["{DAV:}getetag"].text,
                         c.request("GET", book + "a.vcf").header("ETag"))
        # getctag / sync-token property agree with the REPORT
        p = list(multistatus(c.propfind(book, ["d:sync-token"])).values())[0]["props"]
        self.assertEqual(p["{DAV:}sync-token"].text.strip(), ternlib.sync_token_of(r))

    def test_invalid_vcards(self):
        c = self.conn()
        book = abhome(ALICE) + "contacts/"
        bad = {
            "not-vcard.vcf": "hello, this is not a vCard\r\n",
            "no-end.vcf": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x1\r\nFN:No End\r\n",
            "no-fn.vcf": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x2\r\nN:Nobody;;;;\r\nEND:VCARD\r\n",
            "ical.vcf": ternlib.ical_event("x3", 1930298400, 1930302000),
        }
        for name, text in bad.items():
            r = c.request("PUT", book + name, text, VCARD_CT)
            self.assertIn(r.status, (400, 403, 415), "%s: %r" % (name, r))
            if r.status == 403:
                self.assertIn("{%s}valid-address-data" % NS_CARDDAV, ternlib.dav_error_elements(r), r)
            self.assertEqual(c.request("GET", book + name).status, 404, name)

    def test_gal(self):
        c = self.conn()
        gal = abhome(ALICE) + "gal/"
        ms = multistatus(c.propfind(gal, ["d:getetag"], depth=1))
        self.assertGreaterEqual(len(ms) - 1, 2, list(ms))
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<card:addressbook-query xmlns:d="DAV:" '
                'xmlns:card="urn:ietf:params:xml:ns:carddav"><d:prop><card:address-data/></d:prop>'
                '<card:filter><card:prop-filter name="FN"/></card:filter></card:addressbook-query>')
        ms = multistatus(c.report(gal, body))
        texts = [e["props"][ADDR_DATA].text for e in ms.values() if ADDR_DATA in e["props"]]
        joined = "\n".join(texts)
        self.assertIn("Bob Builder", joined)
        self.assertIn(BOB, joined)
        self.assertIn("Alice Archer", joined)
        self.assertNotIn("Hidden Hal", joined, "a user not published in the GAL is listed")
        self.assertNotIn(HIDDEN, joined)
        ms = multistatus(c.report(gal, query_body("EMAIL", "bob@")))
        self.assertEqual(len(ms), 1, ms)
        # read-only
        r = c.request("PUT", gal + "mine.vcf", vcard("mine-1", "Mine Own"), VCARD_CT)
        self.assertIn(r.status, (403, 405), r)
        href = [h for h in multistatus(c.propfind(gal, ["d:getetag"], depth=1)) if h != gal][0]
        self.assertIn(c.request("DELETE", href).status, (403, 405))
        self.assertIn(c.request("DELETE", gal).status, (403, 405))
        self.assertEqual(c.request("GET", href).status, 200)
        # a newly published user shows up
        ternlib.add_users_fast(self.node, ["newbie@" + D], {"newbie@" + D: "Newbie Nash"})
        ms = multistatus(c.report(gal, query_body("FN", "Newbie")))
        self.assertEqual(len(ms), 1, ms)

    def test_vdirsyncer_round_trip(self):
        if not shutil.which("vdirsyncer"):
            self.fail("vdirsyncer is not installed (ops/tern deps installs it)")
        tmp = tempfile.mkdtemp(prefix="tern-vdc-", dir="/tmp")
        self.addCleanup(shutil.rmtree, tmp, True)
        user = ternlib.fresh_user(self.node, "vdc")
        conf = os.path.join(tmp, "config")
        with open(conf, "w") as f:
            f.write(ternlib.VDIRSYNCER_CONF % {"tmp": tmp, "url": ternlib.dav_base(self.node) + "/", "user": user, "pw": PW,
                                       "kind": "carddav", "ext": ".vcf", "coll": "contacts"})
        c = self.conn(user)
        book = abhome(user) + "contacts/"
        self.assertEqual(c.request("PUT", book + "srv.vcf", vcard("srv-1", "Server Sam"), VCARD_CT).status, 201)
        ternlib.vdirsyncer_run(conf, "discover")
        ternlib.vdirsyncer_run(conf, "sync")
        ldir = os.path.join(tmp, "local", "contacts")

        def local_files():
            return ternlib.read_dir(ldir)
        self.assertTrue(any("UID:srv-1" in v for v in local_files().values()), local_files())
        with open(os.path.join(ldir, "loc-1.vcf"), "w") as f:
            f.write(vcard("loc-1", "Local Lou", "lou@local.example"))
        ternlib.vdirsyncer_run(conf, "sync")
        ms = multistatus(c.report(book, query_body("FN", "Local Lou")))
        self.assertEqual(len(ms), 1, ms)
        g = c.request("GET", book + "srv.vcf")
        r = c.request("PUT", book + "srv.vcf", g.text().replace("Server Sam", "Server Sue"),
                      dict(VCARD_CT, **{"If-Match": g.header("ETag")}))
        self.assertIn(r.status, (200, 204), r)
        ternlib.vdirsyncer_run(conf, "sync")
        self.assertTrue(any("Server Sue" in v for v in local_files().values()), local_files())
        for fn, v in local_files().items():
            if "UID:srv-1" in v:
                os.unlink(os.path.join(ldir, fn))
        ternlib.vdirsyncer_run(conf, "sync")
        self.assertEqual(c.request("GET", book + "srv.vcf").status, 404)


if __name__ == "__main__":
    ternlib.main()
