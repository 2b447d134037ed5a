"""Roster and subscriptions (RFC 6121) through the JSON socket, with a real Prosody and a
real contact (carol, a slixmpp peer that answers subscriptions by hand):

- carol asks for alice's presence: a `subscription` event (kind subscribe); `approve`
  makes Prosody tell carol `subscribed`; `subscribe` the other way, carol approves: the
  `subscription` event subscribed, a `roster` push with subscription both, and carol's
  presence (show, status, priority) as a `presence` event; a later change of it too.
  carol is on the roster without a name: the daemon fetches her vCard nick (XEP-0054)
  and a `roster` push brings it (`nick`), kept when she gets a name.
- `roster-set` (name and groups) and `roster-remove` answer once the server has, and the
  server's push follows as a `roster` event (a removed contact: subscription "remove");
  removing carol cancels both subscriptions (carol is told). The server's refusals are
  `refused` with the condition.
- Roster versioning (RFC 6121 §2.6): after a restart the daemon asks with the version of
  the last roster it received (read from its wire log, log_level = "trace") and the
  server answers "nothing changed" with an empty result (§2.6.3); the `roster` op still
  has the whole roster, from the store. A change made by another client of alice while
  the daemon is down reaches the daemon at the next start.

Prosody 0.12 facts this relies on (mod_roster, mod_presence, core.rostermanager):
- the roster version is a counter bumped by every save of the roster, and roster pushes
  carry it; an inbound subscription request also saves (pending-in) WITHOUT a push, so
  the last roster change before a restart here is always one that pushes (roster-set);
- a request with the current version gets `<iq type='result'/>` without <query/>; with an
  older one Prosody sends the WHOLE roster with the new version (never a series of
  pushes): RFC 6121 §2.6.3 leaves the choice to the server, so the test accepts both;
- `subscribed`/`unsubscribed` presences go only to resources that fetched the roster
  ("interested"): carol fetches hers before the exchange.
Run alone: /usr/bin/python3 tests/integration/test_im_roster.py
"""

from typing import Optional

import harness
from harness import ROSTER_NS, JsonlTest, WireStanza, wait_wire, wire_stanzas

ALICE = "alice@localhost"
CAROL = "carol@localhost"


ITEM_FIELDS = ("jid", "name", "subscription", "groups", "nick")


def norm(items: list, fields=ITEM_FIELDS) -> list:
    """Roster items comparable regardless of the server's order (of items and groups),
    with only the fields the contract names (clients ignore fields they do not know, so a
    later version may add some)."""
    return sorted(({**{k: i.get(k) for k in fields}, "groups": sorted(i.get("groups", []))}
                   for i in items), key=lambda i: i["jid"])


SERVER_FIELDS = ITEM_FIELDS[:4]  # what a server push says (the nick is the daemon's)


def roster_query(w: WireStanza) -> Optional[object]:
    return w.find(ROSTER_NS, "query") if w.tag == "iq" else None


def is_roster_get(w: WireStanza) -> bool:
    return w.direction == "SEND" and w.el.get("type") == "get" and roster_query(w) is not None


def is_roster_push(w: WireStanza) -> bool:
    return w.direction == "RECV" and w.el.get("type") == "set" and roster_query(w) is not None


def item_jids(w: WireStanza) -> list:
    return [i.get("jid") for i in roster_query(w).findall(f"{{{ROSTER_NS}}}item")]


class ImRosterTest(JsonlTest):
    def roster_push_event(self, c, jid: str, since: int = 0, **item_fields) -> dict:
        """The next `roster` push event with an item for `jid` whose fields match."""
        def match(e: dict) -> bool:
            return (e.get("event") == "roster" and e.get("push") is True and any(
                i.get("jid") == jid and all(i.get(k) == v for k, v in item_fields.items())
                for i in e.get("items", [])))
        ev = c.wait_event(match, since=since)
        self.assertEqual(len(ev["items"]), 1, f"a roster push carries one item: {ev}")
        self.assertEqual(ev["account"], "home", ev)
        return ev

    def test_subscriptions_presence_and_roster_edits(self):
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)
        carol = self.peer("carol", presence=False)
        carol.manual_subscriptions()
        carol.roster_get()  # "interested": Prosody sends subscription answers only then
        carol.send_presence(show="away", status="on a train", priority=7)
        # What carol calls herself (XEP-0054): the daemon fetches it for a contact
        # without a name.
        vcard = carol.raw_iq(None, "<vCard xmlns='vcard-temp'><NICKNAME>Caro</NICKNAME>"
                                   "</vCard>", type="set")
        self.assertEqual(vcard["type"], "result", vcard)

        # carol asks; alice approves; Prosody tells carol.
        mark = c.mark()
        carol.send_presence(to=ALICE, ptype="subscribe")
        ev = c.wait_event("subscription", since=mark, kind="subscribe", **{"from": CAROL})
        self.assertEqual(ev["account"], "home", ev)
        self.assertIsInstance(ev["seq"], int)
        pmark = carol.presence_mark()
        r = c.ok("approve", account="home", jid=CAROL)
        self.assertIs(r["ok"], True, r)
        carol.wait_presence(type="subscribed", from_=ALICE, since=pmark)
        self.roster_push_event(c, CAROL, since=mark, subscription="from")
        # carol has no name on alice's roster: her vCard nick arrives as a roster push.
        self.roster_push_event(c, CAROL, since=mark, nick="Caro")
        # carol now sees alice online (the server sends her our presence).
        carol.wait_presence(lambda p: p.bare == ALICE and p.type == "", since=pmark)

        # alice subscribes back; carol approves.
        mark, pmark = c.mark(), carol.presence_mark()
        c.ok("subscribe", account="home", jid=CAROL)
        carol.wait_presence(type="subscribe", from_=ALICE, since=pmark)
        carol.send_presence(to=ALICE, ptype="subscribed")
        c.wait_event("subscription", since=mark, kind="subscribed", **{"from": CAROL})
        both = self.roster_push_event(c, CAROL, since=mark, subscription="both")
        self.assertEqual(both["items"][0]["groups"], [], both)
        # The server sends carol's current presence once we may see it.
        p = c.wait_event("presence", since=mark, available=True, **{"from": carol.full_jid})
        self.assertEqual((p["show"], p["status"], p["priority"]), ("away", "on a train", 7), p)
        self.assertEqual(p["account"], "home", p)
        # ... and every later change of it.
        mark = c.mark()
        carol.send_presence(show="dnd", status="in a meeting", priority=-3)
        p2 = c.wait_event("presence", since=mark, **{"from": carol.full_jid})
        self.assertEqual((p2["available"], p2["show"], p2["status"], p2["priority"]),
                         (True, "dnd", "in a meeting", -3), p2)
        carol.send_presence()  # plain available: show "" and priority 0
        p3 = c.wait_event("presence", since=mark, nth=2, **{"from": carol.full_jid})
        self.assertEqual((p3["available"], p3["show"], p3["status"], p3["priority"]),
                         (True, "", "", 0), p3)
        items = c.ok("roster", account="home")["items"]
        self.assertEqual(norm(items), [{"jid": CAROL, "name": "", "subscription": "both",
                                        "groups": [], "nick": "Caro"}])

        # roster-set: name and groups; the push follows.
        mark = c.mark()
        r = c.ok("roster-set", account="home", jid=CAROL, name="Carol C",
                 groups=["Friends", "Work"])
        self.assertIs(r["ok"], True, r)
        push = self.roster_push_event(c, CAROL, since=mark, name="Carol C")
        self.assertEqual(norm(push["items"], SERVER_FIELDS),
                         [{"jid": CAROL, "name": "Carol C", "subscription": "both",
                           "groups": ["Friends", "Work"]}])
        # The nick fetched earlier is kept.
        self.assertEqual(norm(c.ok("roster", account="home")["items"]),
                         [{"jid": CAROL, "name": "Carol C", "subscription": "both",
                           "groups": ["Friends", "Work"], "nick": "Caro"}])

        # A new contact without subscription, then removed.
        c.ok("roster-set", account="home", jid="dave@localhost", name="Dave", groups=[])
        self.roster_push_event(c, "dave@localhost", since=mark, subscription="none",
                               name="Dave")
        self.assertEqual(len(c.ok("roster", account="home")["items"]), 2)
        c.ok("roster-remove", account="home", jid="dave@localhost")
        gone = self.roster_push_event(c, "dave@localhost", since=mark, subscription="remove")
        self.assertEqual(gone["items"][0]["jid"], "dave@localhost", gone)
        self.assertEqual([i["jid"] for i in c.ok("roster", account="home")["items"]], [CAROL])

        # The server's refusals: our own JID (not-allowed), a contact we do not have
        # (item-not-found). The connection goes on.
        own = c.request("roster-set", account="home", jid=ALICE, name="me", groups=[])
        self.assertIs(own.get("ok"), False, own)
        self.assertEqual(own["error"]["code"], "refused", own)
        self.assertIn("not-allowed", own["error"]["message"], own)
        missing = c.request("roster-remove", account="home", jid="nobody@localhost")
        self.assertIs(missing.get("ok"), False, missing)
        self.assertEqual(missing["error"]["code"], "refused", missing)
        self.assertIn("item-not-found", missing["error"]["message"], missing)
        bad = c.request("roster-set", account="home", jid="a@b@c", name="", groups=[])
        self.assertEqual(bad.get("error", {}).get("code"), "bad-jid", bad)
        for wrong in ({"groups": "Friends"}, {"groups": [1]}, {"name": 5}):
            with self.subTest(wrong=wrong):
                fields = {"account": "home", "jid": CAROL, "name": "C", "groups": []}
                fields.update(wrong)
                r = c.request("roster-set", **fields)
                self.assertEqual(r.get("error", {}).get("code"), "bad-request", r)
        r = c.request("roster-set", account="nope", jid=CAROL, name="C", groups=[])
        self.assertEqual(r.get("error", {}).get("code"), "unknown-account", r)

        # Removing carol cancels the subscriptions both ways: carol is told.
        mark, pmark = c.mark(), carol.presence_mark()
        c.ok("roster-remove", account="home", jid=CAROL)
        self.roster_push_event(c, CAROL, since=mark, subscription="remove")
        carol.wait_presence(lambda p: p.bare == ALICE, type="unsubscribed", since=pmark)
        carol.wait_presence(lambda p: p.bare == ALICE, type="unsubscribe", since=pmark)
        self.assertEqual(c.ok("roster", account="home")["items"], [])

    def test_roster_version_across_restarts(self):
        # alice's roster before the daemon ever ran (so its version is past the first).
        setup = self.peer("alice", resource="setup", presence=False)
        setup.roster_set(CAROL, "Carol", ["Friends"])
        setup.roster_set("bob@localhost", "Bob")
        setup.close()

        # Run 1: the whole roster, then one change of ours: its push is the last roster
        # stanza the daemon receives before it stops.
        d1 = self.start_daemon(log_level="trace")
        c = self.client(d1, hello="run1")
        c.wait_event("roster", push=False)
        c.ok("roster-set", account="home", jid=CAROL, name="Carol", groups=["Friends", "Family"])
        last_push = wait_wire(d1, lambda w: is_roster_push(w) and CAROL in item_jids(w),
                              what="the roster push for carol")
        expected = norm(c.ok("roster", account="home")["items"])
        self.assertEqual(expected, [
            {"jid": "bob@localhost", "name": "Bob", "subscription": "none", "groups": [],
             "nick": ""},
            {"jid": CAROL, "name": "Carol", "subscription": "none",
             "groups": ["Family", "Friends"], "nick": ""}])
        versions = [roster_query(w).get("ver") for w in wire_stanzas(d1, direction="RECV")
                    if roster_query(w) is not None and roster_query(w).get("ver")]
        ver = roster_query(last_push).get("ver")
        self.assertTrue(ver, f"Prosody's roster push has a version: {last_push}")
        self.assertEqual(versions[-1], ver, "the push was the last roster stanza of run 1")
        c.close()
        self.assertEqual(d1.stop(), 0)

        # Run 2: nothing changed meanwhile. The daemon asks with the version it has; the
        # server says "nothing changed": an empty result, no <query/>, no items.
        d2 = self.start_daemon(log_level="trace")
        get = wait_wire(d2, is_roster_get, what="the roster request")
        self.assertEqual(roster_query(get).get("ver"), ver,
                         f"the roster request after a restart must carry the last version "
                         f"received ({ver!r}): {get}")
        answer = wait_wire(d2, lambda w: w.direction == "RECV" and w.tag == "iq"
                           and w.el.get("id") == get.el.get("id"), since=get.index,
                           what="the answer to the roster request")
        self.assertEqual(answer.el.get("type"), "result", answer)
        self.assertEqual(list(answer.el), [], f"RFC 6121 §2.6.3: nothing changed, so no "
                                              f"<query/> in the result: {answer}")
        c2 = self.client(d2, hello="run2", replay=False)
        self.assertEqual(norm(c2.ok("roster", account="home")["items"]), expected,
                         "the roster from the store after an empty (unchanged) result")
        # No roster push during run 2: the version the daemon keeps is still `ver`.
        self.assertEqual([w for w in wire_stanzas(d2) if is_roster_push(w)], [])
        c2.close()
        self.assertEqual(d2.stop(), 0)

        # While the daemon is down, another client of alice adds dave.
        other = self.peer("alice", resource="other", presence=False)
        other.roster_set("dave@localhost", "Dave", ["Work"])
        other.close()

        # Run 3: asked with the old version, the server sends what changed (Prosody: the
        # whole roster under a new version; a server may send only dave as pushes).
        d3 = self.start_daemon(log_level="trace")
        get3 = wait_wire(d3, is_roster_get, what="the roster request")
        self.assertEqual(roster_query(get3).get("ver"), ver, get3)
        answer3 = wait_wire(d3, lambda w: w.direction == "RECV" and w.tag == "iq"
                            and w.el.get("id") == get3.el.get("id"), since=get3.index,
                            what="the answer to the roster request")
        self.assertEqual(answer3.el.get("type"), "result", answer3)
        query = roster_query(answer3)
        if query is not None:
            self.assertNotEqual(query.get("ver"), ver, answer3)
            self.assertIn("dave@localhost", item_jids(answer3), answer3)
        else:
            push = wait_wire(d3, lambda w: is_roster_push(w) and "dave@localhost" in
                             item_jids(w), since=answer3.index, what="the push for dave")
            self.assertEqual(item_jids(push), ["dave@localhost"], push)
        dave = {"jid": "dave@localhost", "name": "Dave", "subscription": "none",
                "groups": ["Work"], "nick": ""}
        c3 = self.client(d3, hello="run3")  # replays everything, all three runs
        c3.wait_until(lambda: any(e.get("event") == "roster" and any(
            i.get("jid") == "dave@localhost" for i in e.get("items", [])) for e in c3.events),
            10, "a roster event with dave")
        self.assertEqual(norm(c3.ok("roster", account="home")["items"]),
                         norm(expected + [dave]))


if __name__ == "__main__":
    harness.main()
