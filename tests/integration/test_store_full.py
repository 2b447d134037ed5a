"""When the store cannot be written (a full disk), nothing that is not on disk is
acknowledged, and the daemon starts over from the store once it can write again (issue 13
hardening; docs/reliability.md "When the disk is full").

The fault is real and comes from outside: RLIMIT_FSIZE set on the running daemon (prlimit)
makes every write that would grow a file fail with EFBIG, as a full disk fails with ENOSPC,
so SQLite's commit fails. Raising the limit again is "space was freed".

What must hold, counted by message id at both ends:
- messages bob sends while writes fail are not acknowledged to the server (no XEP-0198 <a/>
  covers them), are shown to no front end, and arrive exactly once after the recovery;
- a `send` made while writes fail gets no reply (it was not accepted) and never reaches bob;
- the daemon does not exit: the same process (pid) serves again, after waiting for the store;
- everything from before the failure is still there, once.
Run alone: /usr/bin/python3 tests/integration/test_store_full.py
"""

import resource

import harness
from harness import JsonlTest

BOB = "bob@localhost"
N = 10


class StoreFullTest(JsonlTest):
    def limit_file_size(self, pid: int, size: int) -> None:
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, hard))

    def test_nothing_unsaved_is_acknowledged_and_the_daemon_starts_over(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bob = self.peer("bob")
        c = self.client(d, hello="reader", replay=False)
        for i in range(N):
            bob.send_message(full, f"before {i}", id=f"before-{i}")
        c.wait_event("message", body=f"before {N - 1}")
        r = c.ok("send", account="home", to=BOB, body="out before", client_id="out-before")
        bob.wait_message(origin_id=r["msg_id"])
        # Acknowledged by the server and stored as such: not sent again after the restart
        # (an unacknowledged one would be, with its origin-id, as after kill -9).
        c.wait_event("message-state", msg_id=r["msg_id"], state="acked", timeout=20)

        pid = d.pid
        mark = d.mark()
        self.limit_file_size(pid, 1)
        for i in range(N):
            bob.send_message(full, f"during {i}", id=f"during-{i}")
        d.wait_for("cannot write to the store", timeout=15, since=mark)
        c.wait_eof()  # the front end was dropped with the process image, its events unsent
        self.assertEqual([e for e in c.events if e.get("body", "").startswith("during")], [],
                         "shown to a front end although not on disk")
        d.wait_for("waiting 5 s for the store to be writable", since=mark)
        self.assertTrue(d.running, "the daemon exited")
        self.assertEqual(d.pid, pid)

        # Still full when the wait is over: it keeps waiting, serving nothing.
        d.wait_for("cannot (open|write to) the store: ", timeout=15, since=mark)
        self.assertEqual(d.count(harness.rx_online("home"), since=mark), 0)

        # Space again: the same process serves again and the session resumes from the store.
        self.limit_file_size(pid, resource.RLIM_INFINITY)
        full = self.wait_online(d, "home", timeout=30, since=mark)
        self.assertEqual(d.pid, pid)
        for i in range(N):
            bob.send_message(full, f"after {i}", id=f"after-{i}")
        c2 = self.client(d, hello="reader", since=0)
        c2.wait_event("message", body=f"after {N - 1}", timeout=15)
        for i in range(N):
            c2.wait_event("message", body=f"during {i}", timeout=15)
        bodies = [e["body"] for e in c2.events if e["event"] == "message" and not e.get("outgoing")]
        for phase in ("before", "during", "after"):
            got = sorted(b for b in bodies if b.startswith(phase + " "))
            self.assertEqual(got, sorted(f"{phase} {i}" for i in range(N)),
                             f"{phase}: lost or twice: {bodies}")

        # A send while the store cannot be written is never accepted, and never sent.
        mark = d.mark()
        self.limit_file_size(pid, 1)
        c2.send_json({"op": "send", "id": "during-send", "account": "home", "to": BOB,
                      "body": "out during", "client_id": "out-during"})
        d.wait_for("cannot write to the store", timeout=15, since=mark)
        c2.wait_eof()
        self.assertEqual([r for r in c2.replies if r.get("id") == "during-send"], [])
        self.limit_file_size(pid, resource.RLIM_INFINITY)
        self.wait_online(d, "home", timeout=30, since=mark)
        c3 = self.client(d, hello="writer", replay=False)
        r = c3.ok("send", account="home", to=BOB, body="out after", client_id="out-after")
        bob.wait_message(origin_id=r["msg_id"])
        got = [m.origin_id for m in bob.received(lambda m: (m.origin_id or "").startswith("out-"))]
        self.assertEqual(got, ["out-before", "out-after"])


if __name__ == "__main__":
    harness.main()
