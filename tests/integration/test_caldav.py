#!/usr/bin/python3
"""CalDAV (issue 7) with a real client, Debian's python3-caldav: discovery from
/.well-known/caldav (RFC 6764) to the principal and its calendar home, the default
"calendar" and "tasks" collections, MKCALENDAR, events (single; weekly with an EXDATE and a
moved override), calendar-query time ranges with and without server-side expand,
sync-collection tokens after add/modify/delete, tasks (VTODO), delete; raw requests for
ETag preconditions (If-Match / If-None-Match -> 412), the free/busy URL (busy for opaque
events, never a SUMMARY), the calendar as one .ics, and a vdirsyncer two-way round trip
against a filesystem storage."""
import calendar as pycal
import datetime
import os
import shutil
import sys
import tempfile
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ternlib  # noqa: E402
from ternlib import DavConn, multistatus, ical_event, ical_components  # noqa: E402

D = "example.test"
ALICE = "alice@" + D
BOB = "bob@" + D
CAROL = "carol@" + D
PW = ternlib.USER_PASSWORD
UTC = datetime.timezone.utc


def ts(y, mo, d, h=0, mi=0):
    return pycal.timegm((y, mo, d, h, mi, 0))


def dt(y, mo, d, h=0, mi=0):
    return datetime.datetime(y, mo, d, h, mi, tzinfo=UTC)


def home(user):
    local, dom = user.split("@")
    return "/calendars/%s/%s/" % (dom, local)


def path_of(url):
    return urllib.parse.unquote(urllib.parse.urlsplit(str(url)).path)


# The weekly series: Mondays 10:00-11:00 UTC from 2031-03-03, 6 times; 2031-03-17 is
# excluded, the 2031-03-24 instance moved to Tuesday 2031-03-25 14:00-15:00.
SERIES = ical_event("weekly-1", "20310303T100000Z", "20310303T110000Z", "Weekly sync",
                    extra=["RRULE:FREQ=WEEKLY;COUNT=6", "EXDATE:20310317T100000Z"],
                    overrides=[("20310324T100000Z", "20310325T140000Z", "20310325T150000Z",
                                "Weekly sync (moved)")])
SERIES_MARCH = {ts(2031, 3, 3, 10), ts(2031, 3, 10, 10), ts(2031, 3, 25, 14), ts(2031, 3, 31, 10)}


def calendar_query(start, end, expand=False, comp="VEVENT"):
    exp = ('<c:expand start="%s" end="%s"/>' % (start, end)) if expand else ""
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            '<d:prop><d:getetag/><c:calendar-data>%s</c:calendar-data></d:prop>'
            '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="%s">'
            '<c:time-range start="%s" end="%s"/></c:comp-filter></c:comp-filter></c:filter>'
            '</c:calendar-query>' % (exp, comp, start, end))


class CalDavTest(ternlib.NodeTestCase):
    NODE = "cal1"
    DOMAIN = D
    CONF = {"server": {"hostname": "dav.example.test"}}
    USERS = (ALICE, BOB, CAROL)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            ternlib.wait_dav(cls.node)
        except AssertionError:
            cls.node.cleanup()
            raise

    def conn(self, user=ALICE, tls=False):
        c = DavConn(self.node, user, tls=tls)
        self.addCleanup(c.close)
        return c

    def put_event(self, c, path, uid, start, end, summary):
        """PUT a single event at path with connection c; it must be stored (201 or 204)."""
        r = c.request("PUT", path, ical_event(uid, start, end, summary), {"Content-Type": "text/calendar"})
        self.assertIn(r.status, (201, 204), r)

    def client(self, user=ALICE, path="/"):
        c = ternlib.dav_client(self.node, user, path=path)
        self.addCleanup(c.close)
        return c

    def principal(self, user=ALICE):
        return self.client(user, "/dav/principals/%s/%s/" % (user.split("@")[1], user.split("@")[0])).principal()

    def new_calendar(self, user=ALICE, name=None):
        name = name or "cal-" + uuid.uuid4().hex[:8]
        return self.principal(user).make_calendar(name=name, cal_id=name)

    # ---- discovery ----

    def test_well_known_redirects(self):
        c = self.conn()
        for path in ("/.well-known/caldav", "/.well-known/carddav", "/caldav", "/carddav"):
            r = c.propfind(path, ["d:current-user-principal"])
            self.assertIn(r.status, (301, 303, 307, 308), "%s: %r" % (path, r))
            loc = r.header("Location")
            self.assertTrue(loc, "%s: no Location" % path)
            self.assertEqual(path_of(loc), "/dav/principals/", "%s -> %s" % (path, loc))

    def test_principal_properties(self):
        c = self.conn()
        props = ["d:current-user-principal", "c:calendar-home-set", "card:addressbook-home-set",
                 "c:calendar-user-address-set", "d:resourcetype", "d:displayname",
                 "c:schedule-inbox-URL", "c:schedule-outbox-URL"]
        r = c.propfind("/dav/principals/%s/alice/" % D, props)
        ms = multistatus(r)
        self.assertEqual(len(ms), 1, r)
        p = list(ms.values())[0]["props"]
        self.assertEqual(ternlib.href_text(p.get("{DAV:}current-user-principal")),
                         "/dav/principals/%s/alice/" % D, r)
        self.assertEqual(ternlib.href_text(p.get("{%s}calendar-home-set" % ternlib.NS_CALDAV)), home(ALICE), r)
        self.assertEqual(ternlib.href_text(p.get("{%s}addressbook-home-set" % ternlib.NS_CARDDAV)),
                         "/addressbooks/%s/alice/" % D, r)
        addrs = [h.text.strip() for h in p["{%s}calendar-user-address-set" % ternlib.NS_CALDAV].iter("{DAV:}href")]
        self.assertIn("mailto:" + ALICE, [a.lower() for a in addrs], r)
        self.assertIsNotNone(p["{DAV:}resourcetype"].find("{DAV:}principal"), r)
        self.assertEqual(ternlib.href_text(p.get("{%s}schedule-inbox-URL" % ternlib.NS_CALDAV)),
                         home(ALICE) + "inbox/", r)
        self.assertEqual(ternlib.href_text(p.get("{%s}schedule-outbox-URL" % ternlib.NS_CALDAV)),
                         home(ALICE) + "outbox/", r)
        # /dav/principals/ leads to the authenticated user's principal.
        r = c.propfind("/dav/principals/", ["d:current-user-principal"])
        if r.status in (301, 302, 303, 307, 308):
            self.assertEqual(path_of(r.header("Location")), "/dav/principals/%s/alice/" % D, r)
        else:
            p = list(multistatus(r).values())[0]["props"]
            self.assertEqual(ternlib.href_text(p.get("{DAV:}current-user-principal")),
                             "/dav/principals/%s/alice/" % D, r)
        # no credentials: 401 with a Basic challenge
        r = c.request("PROPFIND", "/dav/principals/%s/alice/" % D, auth=False, depth=0)
        self.assertEqual(r.status, 401, r)
        self.assertIn("basic", r.header("WWW-Authenticate", "").lower(), r.headers)
        # a wrong password
        bad = DavConn(self.node, ALICE, password="wrong-pass-1")
        self.addCleanup(bad.close)
        self.assertEqual(bad.propfind(home(ALICE), ["d:resourcetype"]).status, 401)

    def test_discovery_with_caldav_client(self):
        """The caldav library starting from the well-known URL finds the principal, its home
        and the default calendars "calendar" (VEVENT) and "tasks" (VTODO)."""
        principal = self.client(ALICE, "/.well-known/caldav").principal()
        self.assertEqual(path_of(principal.url), "/dav/principals/%s/alice/" % D)
        self.assertEqual(path_of(principal.calendar_home_set.url), home(ALICE))
        cals = {path_of(c.url): c for c in principal.calendars()}
        self.assertIn(home(ALICE) + "calendar/", cals, list(cals))
        self.assertIn(home(ALICE) + "tasks/", cals, list(cals))
        self.assertNotIn(home(ALICE) + "inbox/", cals, "the schedule inbox is not a calendar")
        self.assertIn("VEVENT", cals[home(ALICE) + "calendar/"].get_supported_components())
        self.assertIn("VTODO", cals[home(ALICE) + "tasks/"].get_supported_components())
        # the same over HTTPS (8443 + base)
        c = ternlib.dav_client(self.node, ALICE, path="/dav/principals/%s/alice/" % D, tls=True)
        self.addCleanup(c.close)
        self.assertIn(home(ALICE) + "calendar/", [path_of(x.url) for x in c.principal().calendars()])

    def test_other_users_home_is_refused(self):
        c = self.conn(BOB)
        r = c.propfind(home(ALICE) + "calendar/", ["d:getetag"], depth=1)
        self.assertIn(r.status, (403, 404), r)
        r = c.request("PUT", home(ALICE) + "calendar/intruder.ics",
                      ical_event("intruder-1", ts(2031, 5, 1, 9), ts(2031, 5, 1, 10), "Intruder"),
                      {"Content-Type": "text/calendar"})
        self.assertIn(r.status, (403, 404), r)
        self.assertEqual(self.conn(ALICE).request("GET", home(ALICE) + "calendar/intruder.ics").status, 404)

    # ---- collections and events ----

    def test_make_calendar_and_events(self):
        principal = self.principal()
        cal = principal.make_calendar(name="Work", cal_id="work")
        self.assertEqual(path_of(cal.url), home(ALICE) + "work/")
        names = {path_of(c.url): c.get_display_name() for c in principal.calendars()}
        self.assertEqual(names.get(home(ALICE) + "work/"), "Work", names)
        # MKCALENDAR again on the same URL is refused (RFC 4791 5.3.1: 405 or 403)
        r = self.conn().request("MKCALENDAR", home(ALICE) + "work/")
        self.assertIn(r.status, (403, 405, 409), r)

        ev = cal.save_event(ical_event("single-1", ts(2031, 3, 5, 9), ts(2031, 3, 5, 10), "Dentist"))
        cal.save_event(SERIES)
        self.assertEqual(len(cal.events()), 2)
        got = cal.event_by_uid("single-1")
        self.assertIn("SUMMARY:Dentist", got.data)
        self.assertEqual(path_of(got.url), path_of(ev.url))

        def uids(found):
            return sorted({c.vobject_instance.vevent.uid.value for c in found})

        # time ranges (no expand): the series is found in March, not in the excluded week,
        # is found on the moved override's day, not after its last instance
        self.assertEqual(uids(cal.search(start=dt(2031, 3, 1), end=dt(2031, 4, 1), event=True)),
                         ["single-1", "weekly-1"])
        self.assertEqual(uids(cal.search(start=dt(2031, 3, 17), end=dt(2031, 3, 18), event=True)), [])
        self.assertEqual(uids(cal.search(start=dt(2031, 3, 24), end=dt(2031, 3, 25), event=True)), [],
                         "the moved instance is no longer on 24 March")
        self.assertEqual(uids(cal.search(start=dt(2031, 3, 25), end=dt(2031, 3, 26), event=True)), ["weekly-1"])
        self.assertEqual(uids(cal.search(start=dt(2031, 4, 7, 12), end=dt(2031, 6, 1), event=True)), [])
        self.assertEqual(uids(cal.date_search(dt(2031, 3, 5, 9, 30), dt(2031, 3, 5, 9, 45))), ["single-1"])

        # server-side expand: the raw REPORT must come back without RRULE/EXDATE, one
        # component per instance with a RECURRENCE-ID, in UTC
        r = self.conn().report(home(ALICE) + "work/",
                               calendar_query("20310301T000000Z", "20310401T000000Z", expand=True))
        ms = multistatus(r)
        data = {h: e["props"]["{%s}calendar-data" % ternlib.NS_CALDAV].text for h, e in ms.items()}
        series = [v for h, v in data.items() if "weekly-1" in v]
        self.assertEqual(len(series), 1, r)
        self.assertNotIn("RRULE", series[0])
        self.assertNotIn("EXDATE", series[0])
        comps = ical_components(series[0])
        starts = set()
        for comp in comps:
            self.assertIn("RECURRENCE-ID", comp, comp)
            v = ternlib.ical_value(comp["DTSTART"][0])
            self.assertTrue(v.endswith("Z"), "expanded instance not in UTC: %r" % comp["DTSTART"])
            starts.add(pycal.timegm(datetime.datetime.strptime(v, "%Y%m%dT%H%M%SZ").timetuple()))
        self.assertEqual(starts, SERIES_MARCH, series[0])
        moved = [c for c in comps if ternlib.ical_value(c["DTSTART"][0]) == "20310325T140000Z"]
        self.assertEqual(ternlib.ical_value(moved[0]["SUMMARY"][0]), "Weekly sync (moved)")
        # expand names both ends of its range (RFC 4791 9.6.5): an open one is refused
        body = calendar_query("20310301T000000Z", "20310401T000000Z", expand=True)
        r = self.conn().report(home(ALICE) + "work/", body.replace(' end="20310401T000000Z"/>', "/>", 1))
        self.assertEqual(r.status, 400, r)

        # the library's expand gives the same four instances
        found = cal.search(start=dt(2031, 3, 1), end=dt(2031, 4, 1), event=True, expand=True)
        starts = sorted(int(f.vobject_instance.vevent.dtstart.value.timestamp()) for f in found
                        if f.vobject_instance.vevent.uid.value == "weekly-1")
        self.assertEqual(set(starts), SERIES_MARCH)
        self.assertEqual(len(starts), 4)

        # modify and delete through the library
        got.vobject_instance.vevent.summary.value = "Dentist (moved)"
        got.save()
        self.assertIn("Dentist (moved)", cal.event_by_uid("single-1").data)
        got.delete()
        self.assertEqual(uids(cal.events()), ["weekly-1"])
        cal.delete()
        self.assertNotIn(home(ALICE) + "work/", [path_of(c.url) for c in principal.calendars()])

    def test_proppatch_displayname_and_color(self):
        cal = self.new_calendar()
        c = self.conn()
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<d:propertyupdate xmlns:d="DAV:" '
                'xmlns:a="http://apple.com/ns/ical/"><d:set><d:prop><d:displayname>Renamed</d:displayname>'
                '<a:calendar-color>#FF0000FF</a:calendar-color></d:prop></d:set></d:propertyupdate>')
        r = c.request("PROPPATCH", path_of(cal.url), body)
        self.assertEqual(r.status, 207, r)
        ms = multistatus(c.propfind(path_of(cal.url), ["d:displayname", "a:calendar-color", "cs:getctag"],
                                    extra_ns=' xmlns:a="http://apple.com/ns/ical/"'))
        p = list(ms.values())[0]["props"]
        self.assertEqual(p["{DAV:}displayname"].text, "Renamed")
        self.assertEqual(p["{http://apple.com/ns/ical/}calendar-color"].text, "#FF0000FF")
        ctag = p["{%s}getctag" % ternlib.NS_CS].text
        cal.save_event(ical_event("ctag-1", ts(2031, 6, 1, 9), ts(2031, 6, 1, 10)))
        p = list(multistatus(c.propfind(path_of(cal.url), ["cs:getctag"])).values())[0]["props"]
        self.assertNotEqual(p["{%s}getctag" % ternlib.NS_CS].text, ctag, "CTag unchanged after a PUT")

    def test_propfind_depth1_and_multiget(self):
        cal = self.new_calendar()
        for i in range(5):
            cal.save_event(ical_event("mg-%d" % i, ts(2031, 4, 1 + i, 9), ts(2031, 4, 1 + i, 10), "M%d" % i))
        c = self.conn()
        ms = multistatus(c.propfind(path_of(cal.url), ["d:getetag", "d:resourcetype", "d:getcontenttype"], depth=1))
        objs = {h: e for h, e in ms.items() if h != path_of(cal.url)}
        self.assertEqual(len(objs), 5, list(ms))
        for h, e in objs.items():
            etag = e["props"]["{DAV:}getetag"].text
            self.assertTrue(etag.startswith('"') and etag.endswith('"'), "weak or unquoted ETag %r" % etag)
            self.assertIn("text/calendar", e["props"]["{DAV:}getcontenttype"].text)
        coll = ms[path_of(cal.url)]["props"]["{DAV:}resourcetype"]
        self.assertIsNotNone(coll.find("{%s}calendar" % ternlib.NS_CALDAV))
        hrefs = sorted(objs)[:2]
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<c:calendar-multiget xmlns:d="DAV:" '
                'xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop>%s'
                '<d:href>%smissing.ics</d:href></c:calendar-multiget>'
                % ("".join("<d:href>%s</d:href>" % h for h in hrefs), path_of(cal.url)))
        ms = multistatus(c.report(path_of(cal.url), body))
        for h in hrefs:
            self.assertIn("BEGIN:VCALENDAR", ms[h]["props"]["{%s}calendar-data" % ternlib.NS_CALDAV].text)
            self.assertEqual(ms[h]["props"]["{DAV:}getetag"].text, objs[h]["props"]["{DAV:}getetag"].text)
        self.assertEqual(ms[path_of(cal.url) + "missing.ics"]["status"], 404)

    def test_sync_tokens(self):
        cal = self.new_calendar()
        cal.save_event(ical_event("sync-a", ts(2031, 5, 1, 9), ts(2031, 5, 1, 10), "A"))
        cal.save_event(ical_event("sync-b", ts(2031, 5, 2, 9), ts(2031, 5, 2, 10), "B"))
        coll = cal.objects_by_sync_token(load_objects=True)
        self.assertEqual(len(list(coll)), 2)
        token0 = coll.sync_token
        self.assertTrue(token0)
        # nothing changed: nothing reported
        updated, deleted = coll.sync()
        self.assertEqual((len(updated), len(deleted)), (0, 0))
        # add
        c_ev = cal.save_event(ical_event("sync-c", ts(2031, 5, 3, 9), ts(2031, 5, 3, 10), "C"))
        updated, deleted = coll.sync()
        self.assertEqual([path_of(o.url) for o in updated], [path_of(c_ev.url)])
        self.assertEqual(deleted, [])
        self.assertNotEqual(coll.sync_token, token0)
        # modify
        a = cal.event_by_uid("sync-a")
        a.vobject_instance.vevent.summary.value = "A2"
        a.save()
        updated, deleted = coll.sync()
        self.assertEqual([path_of(o.url) for o in updated], [path_of(a.url)])
        self.assertIn("SUMMARY:A2", list(updated)[0].data)
        # delete
        b = cal.event_by_uid("sync-b")
        b.delete()
        updated, deleted = coll.sync()
        self.assertEqual(updated, [])
        self.assertEqual([path_of(o.url) for o in deleted], [path_of(b.url)])
        # the raw REPORT from token0 lists all three changes, the deletion with 404
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<d:sync-collection xmlns:d="DAV:">'
                '<d:sync-token>%s</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop>'
                '</d:sync-collection>' % token0)
        r = self.conn().report(path_of(cal.url), body)
        ms = multistatus(r)
        self.assertEqual(ms[path_of(b.url)]["status"], 404, r)
        self.assertIn("{DAV:}getetag", ms[path_of(a.url)]["props"])
        self.assertIn("{DAV:}getetag", ms[path_of(c_ev.url)]["props"])
        self.assertEqual(ternlib.sync_token_of(r), coll.sync_token)
        # an unknown token: 403/409 with DAV:valid-sync-token
        body = body.replace(token0, token0 + "9999999")
        r = self.conn().report(path_of(cal.url), body)
        self.assertIn(r.status, (403, 409), r)
        self.assertIn("{DAV:}valid-sync-token", ternlib.dav_error_elements(r), r)

    def test_todos(self):
        principal = self.principal()
        tasks = [c for c in principal.calendars() if path_of(c.url) == home(ALICE) + "tasks/"][0]
        tasks.save_todo(ical_event("todo-open", "20310401T090000Z", "20310410T170000Z", "Write report",
                                   component="VTODO", extra=["STATUS:NEEDS-ACTION"]))
        tasks.save_todo(ical_event("todo-done", "20310401T090000Z", "20310402T170000Z", "File taxes",
                                   component="VTODO", extra=["STATUS:COMPLETED", "COMPLETED:20310402T120000Z"]))
        pending = [t.vobject_instance.vtodo.uid.value for t in tasks.todos()]
        self.assertEqual(pending, ["todo-open"])
        every = sorted(t.vobject_instance.vtodo.uid.value for t in tasks.todos(include_completed=True))
        self.assertEqual(every, ["todo-done", "todo-open"])
        t = tasks.todo_by_uid("todo-open")
        t.complete()
        self.assertEqual([x.vobject_instance.vtodo.uid.value for x in tasks.todos()], [])
        # a VEVENT in a VTODO-only collection: supported-calendar-component
        r = self.conn().request("PUT", home(ALICE) + "tasks/ev.ics",
                                ical_event("ev-in-tasks", ts(2031, 4, 1, 9), ts(2031, 4, 1, 10)),
                                {"Content-Type": "text/calendar"})
        self.assertEqual(r.status, 403, r)
        self.assertIn("{%s}supported-calendar-component" % ternlib.NS_CALDAV, ternlib.dav_error_elements(r), r)
        tasks.todo_by_uid("todo-done").delete()
        self.assertEqual(len(tasks.todos(include_completed=True)), 1)

    # ---- raw HTTP semantics ----

    def test_etag_preconditions(self):
        cal = self.new_calendar()
        p = path_of(cal.url) + "etag-1.ics"
        c = self.conn()
        hdr = {"Content-Type": "text/calendar; charset=utf-8"}
        body1 = ical_event("etag-1", ts(2031, 7, 1, 9), ts(2031, 7, 1, 10), "v1")
        r = c.request("PUT", p, body1, dict(hdr, **{"If-None-Match": "*"}))
        self.assertEqual(r.status, 201, r)
        etag1 = r.header("ETag")
        g = c.request("GET", p)
        self.assertEqual(g.status, 200)
        self.assertIn("text/calendar", g.header("Content-Type"))
        if etag1:
            self.assertEqual(g.header("ETag"), etag1)
        etag1 = g.header("ETag")
        self.assertTrue(etag1 and etag1.startswith('"'), "no strong ETag: %r" % g.headers)
        # If-None-Match: * on an existing object
        r = c.request("PUT", p, body1, dict(hdr, **{"If-None-Match": "*"}))
        self.assertEqual(r.status, 412, r)
        # a stale If-Match
        r = c.request("PUT", p, body1.replace("v1", "v2"), dict(hdr, **{"If-Match": '"not-the-etag"'}))
        self.assertEqual(r.status, 412, r)
        self.assertIn("SUMMARY:v1", c.request("GET", p).text())
        # the right one
        r = c.request("PUT", p, body1.replace("v1", "v2"), dict(hdr, **{"If-Match": etag1}))
        self.assertIn(r.status, (200, 204), r)
        g = c.request("GET", p)
        self.assertIn("SUMMARY:v2", g.text())
        etag2 = g.header("ETag")
        self.assertNotEqual(etag1, etag2)
        # the old etag no longer matches, for PUT and DELETE
        self.assertEqual(c.request("PUT", p, body1, dict(hdr, **{"If-Match": etag1})).status, 412)
        self.assertEqual(c.request("DELETE", p, headers={"If-Match": etag1}).status, 412)
        # If-Match on a missing object
        r = c.request("PUT", path_of(cal.url) + "absent.ics",
                      ical_event("absent-1", ts(2031, 7, 2, 9), ts(2031, 7, 2, 10)), dict(hdr, **{"If-Match": etag1}))
        self.assertEqual(r.status, 412, r)
        self.assertEqual(c.request("GET", path_of(cal.url) + "absent.ics").status, 404)
        # If-None-Match with the ETag on GET: 304
        self.assertEqual(c.request("GET", p, headers={"If-None-Match": etag2}).status, 304)
        # the same UID under another href: no-uid-conflict
        r = c.request("PUT", path_of(cal.url) + "other-href.ics", body1, hdr)
        self.assertIn(r.status, (403, 409), r)
        self.assertIn("{%s}no-uid-conflict" % ternlib.NS_CALDAV, ternlib.dav_error_elements(r), r)
        r = c.request("DELETE", p, headers={"If-Match": etag2})
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(c.request("GET", p).status, 404)
        self.assertEqual(c.request("DELETE", p).status, 404)

    def test_options_advertises_dav(self):
        r = self.conn().request("OPTIONS", home(ALICE) + "calendar/")
        self.assertIn(r.status, (200, 204), r)
        dav = r.header("DAV", "").lower()
        for cls in ("1", "calendar-access"):
            self.assertIn(cls, [x.strip() for x in dav.split(",")], r.headers)
        allow = r.header("Allow", "").upper()
        for m in ("PROPFIND", "REPORT", "PUT", "DELETE", "MKCALENDAR"):
            self.assertIn(m, allow, r.headers)

    # ---- free/busy and iCal ----

    def test_freebusy_url(self):
        c = self.conn(BOB)
        cal = home(BOB) + "calendar/"
        put = {"Content-Type": "text/calendar"}
        events = [
            ("fb-opaque", ts(2031, 8, 4, 9), ts(2031, 8, 4, 10), "Secret merger talk", []),
            ("fb-transp", ts(2031, 8, 4, 12), ts(2031, 8, 4, 13), "Lunch maybe", ["TRANSP:TRANSPARENT"]),
            ("fb-tent", ts(2031, 8, 5, 9), ts(2031, 8, 5, 10), "Tentative thing", ["STATUS:TENTATIVE"]),
            ("fb-cancel", ts(2031, 8, 6, 9), ts(2031, 8, 6, 10), "Cancelled thing", ["STATUS:CANCELLED"]),
            ("fb-outside", ts(2031, 9, 20, 9), ts(2031, 9, 20, 10), "Far away", []),
        ]
        for uid, s, e, summ, extra in events:
            r = c.request("PUT", cal + uid + ".ics", ical_event(uid, s, e, summ, extra=extra), put)
            self.assertIn(r.status, (201, 204), r)
        r = c.request("PUT", cal + "fb-weekly.ics",
                      ical_event("fb-weekly", "20310804T150000Z", "20310804T160000Z", "Weekly private",
                                 extra=["RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE:20310811T150000Z"]), put)
        self.assertIn(r.status, (201, 204), r)
        q = "?start=20310801T000000Z&end=20310901T000000Z"
        for path in ("/freebusy/%s%s" % (BOB, q), "/freebusy/%s.ifb%s" % (BOB, q)):
            r = self.conn(ALICE).request("GET", path)
            self.assertEqual(r.status, 200, "%s: %r" % (path, r))
            self.assertIn("text/calendar", r.header("Content-Type", ""))
            text = r.text()
            self.assertIn("BEGIN:VFREEBUSY", text)
            for secret in ("Secret", "merger", "Lunch", "Tentative thing", "Weekly private", "SUMMARY",
                           "DESCRIPTION", "fb-opaque"):
                self.assertNotIn(secret, text, "free/busy reveals %r:\n%s" % (secret, text))
            periods = ternlib.freebusy_periods(text)
            busy = [(s, e) for s, e, t in periods if t == "BUSY"]
            tentative = [(s, e) for s, e, t in periods if t == "BUSY-TENTATIVE"]
            self.assertEqual(busy, [(ts(2031, 8, 4, 9), ts(2031, 8, 4, 10)),
                                    (ts(2031, 8, 4, 15), ts(2031, 8, 4, 16)),
                                    (ts(2031, 8, 18, 15), ts(2031, 8, 18, 16))], text)
            self.assertEqual(tentative, [(ts(2031, 8, 5, 9), ts(2031, 8, 5, 10))], text)
            dtstart = [ternlib.ical_value(x) for x in ternlib.ical_unfold(text) if x.startswith("DTSTART")]
            self.assertEqual(dtstart, ["20310801T000000Z"], text)
        # a range beyond freebusy_max_days and a bad time are refused; an unknown user 404
        r = self.conn(ALICE).request("GET", "/freebusy/%s?start=20310101T000000Z&end=20340101T000000Z" % BOB)
        if r.status == 200:           # clamped to freebusy_max_days instead of refused
            dtend = [ternlib.ical_value(x) for x in ternlib.ical_unfold(r.text()) if x.startswith("DTEND")]
            self.assertTrue(dtend and dtend[0] <= "20320102T000000Z", "range not bounded: %r" % r)
        else:
            self.assertEqual(r.status, 400, r)
        r = self.conn(ALICE).request("GET", "/freebusy/%s?start=yesterday&end=20310901T000000Z" % BOB)
        self.assertEqual(r.status, 400, r)
        r = self.conn(ALICE).request("GET", "/freebusy/nobody@%s%s" % (D, q))
        self.assertEqual(r.status, 404, r)

    def test_freebusy_query_report(self):
        c = self.conn(CAROL)
        cal = home(CAROL) + "calendar/"
        self.put_event(c, cal + "fbq.ics", "fbq", ts(2031, 10, 1, 9), ts(2031, 10, 1, 11), "Private")
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav">'
                '<c:time-range start="20311001T000000Z" end="20311002T000000Z"/></c:free-busy-query>')
        r = c.report(cal, body, depth=1)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("Private", r.text())
        self.assertEqual([(s, e) for s, e, _ in ternlib.freebusy_periods(r.text())],
                         [(ts(2031, 10, 1, 9), ts(2031, 10, 1, 11))], r.text())

    def test_ical_export(self):
        c = self.conn(CAROL)
        cal = home(CAROL) + "calendar/"
        for i in range(3):
            self.put_event(c, cal + "ics-%d.ics" % i, "ics-%d" % i, ts(2031, 11, 1 + i, 9), ts(2031, 11, 1 + i, 10),
                           "Ics %d" % i)
        r = c.request("GET", "/ical/%s/carol/calendar.ics" % D)
        self.assertEqual(r.status, 200, r)
        self.assertIn("text/calendar", r.header("Content-Type", ""))
        text = r.text()
        self.assertEqual(text.count("BEGIN:VCALENDAR"), 1, text[:500])
        uids = {ternlib.ical_value(comp["UID"][0]) for comp in ical_components(text)}
        self.assertTrue({"ics-0", "ics-1", "ics-2"} <= uids, uids)
        # another user cannot read it, nobody without credentials either
        self.assertIn(self.conn(ALICE).request("GET", "/ical/%s/carol/calendar.ics" % D).status, (403, 404))
        self.assertEqual(c.request("GET", "/ical/%s/carol/calendar.ics" % D, auth=False).status, 401)
        # not public: the public URL does not have it
        self.assertIn(c.request("GET", "/ical/public/%s/calendar.ics" % D, auth=False).status, (403, 404))
        # published with Tern's property, it is served to anyone at the public URL
        patch = ('<?xml version="1.0" encoding="utf-8"?>\n<d:propertyupdate xmlns:d="DAV:" '
                 'xmlns:t="urn:tern:params:xml:ns:dav"><d:set><d:prop><t:published>1</t:published>'
                 '</d:prop></d:set></d:propertyupdate>')
        r = c.request("PROPPATCH", cal, patch)
        self.assertEqual(r.status, 207, r)
        self.assertIn("200", r.text())
        r = c.request("GET", "/ical/public/%s/carol/calendar.ics" % D, auth=False)
        self.assertEqual(r.status, 200, r)
        uids = {ternlib.ical_value(comp["UID"][0]) for comp in ical_components(r.text())}
        self.assertTrue({"ics-0", "ics-1", "ics-2"} <= uids, uids)
        patch = patch.replace(">1<", ">0<")
        self.assertEqual(c.request("PROPPATCH", cal, patch).status, 207)
        self.assertIn(c.request("GET", "/ical/public/%s/carol/calendar.ics" % D, auth=False).status, (403, 404))

    # ---- scheduling between local users (RFC 6638) ----

    def test_invitation_and_reply(self):
        org, att = self.conn(ALICE), self.conn(CAROL)
        uid = "sched-" + uuid.uuid4().hex[:8]
        body = ical_event(uid, ts(2031, 12, 10, 9), ts(2031, 12, 10, 10), "Planning",
                          extra=["ORGANIZER:mailto:" + ALICE,
                                 "ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:" + ALICE,
                                 "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + CAROL])
        r = org.request("PUT", home(ALICE) + "calendar/%s.ics" % uid, body, {"Content-Type": "text/calendar"})
        self.assertEqual(r.status, 201, r)
        # carol: the REQUEST in her schedule inbox, the event in her default calendar
        found = {}

        def arrived():
            ms = multistatus(att.report(home(CAROL) + "calendar/", calendar_query("20311210T000000Z",
                                                                                 "20311211T000000Z")))
            for h, e in ms.items():
                d = e["props"]["{%s}calendar-data" % ternlib.NS_CALDAV].text
                if "UID:" + uid in d:
                    found["href"], found["data"] = h, d
                    return True
            return False
        self.node.wait_for(arrived, 20, "the invitation in carol's calendar")
        self.assertNotIn("METHOD:", found["data"])
        ms = multistatus(att.propfind(home(CAROL) + "inbox/", ["d:getetag"], depth=1))
        self.assertTrue([h for h in ms if h != home(CAROL) + "inbox/"], "carol's schedule inbox is empty")
        # carol accepts: alice's copy shows it
        g = att.request("GET", found["href"])
        accepted = g.text().replace("PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + CAROL,
                                    "PARTSTAT=ACCEPTED:mailto:" + CAROL)
        accepted = accepted.replace("PARTSTAT=NEEDS-ACTION:mailto:" + CAROL, "PARTSTAT=ACCEPTED:mailto:" + CAROL)
        accepted = accepted.replace("RSVP=TRUE;PARTSTAT=NEEDS-ACTION:mailto:" + CAROL,
                                    "PARTSTAT=ACCEPTED:mailto:" + CAROL)
        self.assertIn("PARTSTAT=ACCEPTED:mailto:" + CAROL, "".join(ternlib.ical_unfold(accepted)),
                      "could not make carol's answer from %r" % g.text())
        r = att.request("PUT", found["href"], accepted, {"Content-Type": "text/calendar", "If-Match": g.header("ETag")})
        self.assertIn(r.status, (200, 201, 204), r)

        def replied():
            t = org.request("GET", home(ALICE) + "calendar/%s.ics" % uid).text()
            for comp in ical_components(t):
                for line in comp.get("ATTENDEE", []):
                    if ternlib.ical_value(line).lower() == "mailto:" + CAROL:
                        return ternlib.ical_param(line, "PARTSTAT") == "ACCEPTED"
            return False
        self.node.wait_for(replied, 20, "carol's ACCEPTED in alice's copy")
        # alice deletes the event: carol's copy goes (or is marked cancelled)
        self.assertIn(org.request("DELETE", home(ALICE) + "calendar/%s.ics" % uid).status, (200, 204))

        def cancelled():
            r = att.request("GET", found["href"])
            return r.status == 404 or "STATUS:CANCELLED" in r.text()
        self.node.wait_for(cancelled, 20, "the CANCEL reaching carol's copy")

    def test_outbox_freebusy_post(self):
        c = self.conn(CAROL)
        self.put_event(c, home(CAROL) + "calendar/obx.ics", "obx", ts(2031, 12, 20, 13), ts(2031, 12, 20, 14),
                       "Hidden detail")
        req = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Tern tests//EN", "METHOD:REQUEST",
                            "BEGIN:VFREEBUSY", "UID:fbreq-1", "DTSTAMP:20300101T000000Z",
                            "DTSTART:20311220T000000Z", "DTEND:20311221T000000Z",
                            "ORGANIZER:mailto:" + ALICE, "ATTENDEE:mailto:" + CAROL,
                            "ATTENDEE:mailto:nobody@elsewhere.example", "END:VFREEBUSY", "END:VCALENDAR", ""])
        r = self.conn(ALICE).request("POST", home(ALICE) + "outbox/", req,
                                     {"Content-Type": "text/calendar; charset=utf-8"})
        self.assertEqual(r.status, 200, r)
        root = r.xml()
        self.assertEqual(root.tag, "{%s}schedule-response" % ternlib.NS_CALDAV, r)
        answers = {}
        for resp in root.findall("{%s}response" % ternlib.NS_CALDAV):
            who = resp.findtext("{%s}recipient/{DAV:}href" % ternlib.NS_CALDAV).strip().lower()
            answers[who] = (resp.findtext("{%s}request-status" % ternlib.NS_CALDAV) or "",
                            resp.findtext("{%s}calendar-data" % ternlib.NS_CALDAV) or "")
        status, data = answers["mailto:" + CAROL]
        self.assertTrue(status.startswith("2.0"), answers)
        self.assertNotIn("Hidden detail", data)
        self.assertEqual([(s, e) for s, e, _ in ternlib.freebusy_periods(data)],
                         [(ts(2031, 12, 20, 13), ts(2031, 12, 20, 14))], data)
        self.assertTrue(answers["mailto:nobody@elsewhere.example"][0].startswith("3.7"), answers)

    # ---- vdirsyncer ----

    def test_vdirsyncer_round_trip(self):
        if not shutil.which("vdirsyncer"):
            self.fail("vdirsyncer is not installed (ops/tern deps installs it)")
        user = ternlib.fresh_user(self.node, "vds")
        tmp = tempfile.mkdtemp(prefix="tern-vds-", dir="/tmp")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "config")
        with open(conf, "w") as f:
            f.write(ternlib.VDIRSYNCER_CONF % {"tmp": tmp, "url": ternlib.dav_base(self.node) + "/", "user": user, "pw": PW,
                                       "kind": "caldav", "ext": ".ics", "coll": "calendar"})
        c = self.conn(user)
        cal = home(user) + "calendar/"
        self.put_event(c, cal + "from-server.ics", "from-server", ts(2031, 12, 1, 9), ts(2031, 12, 1, 10),
                       "Server side")
        ternlib.vdirsyncer_run(conf, "discover")
        ternlib.vdirsyncer_run(conf, "sync")
        ldir = os.path.join(tmp, "local", "calendar")
        files = ternlib.read_dir(ldir)
        self.assertTrue(any("UID:from-server" in v for v in files.values()), files)
        # local -> server
        with open(os.path.join(ldir, "from-local.ics"), "w") as f:
            f.write(ical_event("from-local", ts(2031, 12, 2, 9), ts(2031, 12, 2, 10), "Local side"))
        ternlib.vdirsyncer_run(conf, "sync")
        ms = multistatus(c.report(cal, calendar_query("20311201T000000Z", "20311203T000000Z")))
        datas = [e["props"]["{%s}calendar-data" % ternlib.NS_CALDAV].text for e in ms.values()]
        self.assertTrue(any("UID:from-local" in d for d in datas), datas)
        # server change -> local
        g = c.request("GET", cal + "from-server.ics")
        r = c.request("PUT", cal + "from-server.ics", g.text().replace("Server side", "Server edit"),
                      {"Content-Type": "text/calendar", "If-Match": g.header("ETag")})
        self.assertIn(r.status, (200, 204), r)
        ternlib.vdirsyncer_run(conf, "sync")
        files = ternlib.read_dir(ldir)
        self.assertTrue(any("Server edit" in v for v in files.values()), files)
        # local delete -> server
        for fn, v in files.items():
            if "UID:from-server" in v:
                os.unlink(os.path.join(ldir, fn))
        ternlib.vdirsyncer_run(conf, "sync")
        ms = multistatus(c.propfind(cal, ["d:getetag"], depth=1))
        self.assertNotIn(cal + "from-server.ics", ms)
        self.assertEqual(len([h for h in ms if h != cal]), 1, list(ms))


if __name__ == "__main__":
    ternlib.main()
