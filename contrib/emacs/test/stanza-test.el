;;; stanza-test.el --- ERT tests of stanza.el  -*- lexical-binding: t; -*-

;;; Commentary:

;; Run by tests/integration/test_emacs.py against the real stanzad,
;; connected to a real Prosody, with a slixmpp peer (bob):
;;
;;   $EMACS -Q --batch -L contrib/emacs -l ert \
;;         -l contrib/emacs/test/stanza-test.el \
;;         -l contrib/emacs/test/stanza-test-fake.el -f ert-run-tests-batch-and-exit
;;
;; $STANZA_TEST_SOCKET is the daemon's socket, $STANZA_TEST_CTL a
;; control socket through which the tests make the peer send and wait
;; for messages, stop and start the daemon, and check what it stored
;; (one JSON array per line, one JSON object back).  Without them these
;; tests are skipped; the ones with a fake daemon (a server socket in
;; this Emacs) are in stanza-test-fake.el and run anyway.  The helpers
;; both files use are in stanza-test-lib.el.
;;
;; No fixed sleeps: every wait is an `accept-process-output' loop that
;; ends as soon as its condition holds, with a deadline.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'stanza)
(eval-and-compile
  ;; stanza-test-lib.el beside this file, even when test/ is not in
  ;; `load-path' (emacs -Q --batch -L contrib/emacs -l ...), as in stanza.el.
  (let ((load-path (let ((file (macroexp-file-name)))
                     (if file (cons (file-name-directory file) load-path) load-path))))
    (require 'stanza-test-lib)))

;;;; Tests with the real daemon

(ert-deftest stanza-test-roster-shows-peer ()
  "The command `stanza' lists the account and the peer (group, presence); RET opens."
  (stanza-test--start "ert-roster")
  (let ((roster (get-buffer stanza-roster-buffer-name)))
    (stanza-test--wait
     (lambda ()
       (with-current-buffer roster
         (goto-char (point-min))
         (re-search-forward (concat "● Bob  " (regexp-quote stanza-test-peer) "  online") nil t)))
     20 "bob, online, in the roster")
    (with-current-buffer roster
      (let ((text (buffer-string)))
        (should (string-match-p "^home  alice@localhost  online$" text))
        (should (string-match-p "^  Friends$" text)))
      (goto-char (point-min))
      (re-search-forward "Bob  ")
      (should (equal (plist-get (get-text-property (point) 'stanza-item) :jid) stanza-test-peer))
      (call-interactively (key-binding (kbd "RET"))))
    (let ((chat (stanza-test--peer-buffer)))
      (should chat)
      (should (eq (window-buffer (selected-window)) chat))
      (with-current-buffer chat
        (should (eq major-mode 'stanza-chat-mode))
        (should (equal stanza-chat-peer stanza-test-peer))
        (should (string-match-p "\\`Bob <bob@localhost> — online" (stanza-chat--header-line)))))))

(ert-deftest stanza-test-incoming-message ()
  "A message from the peer shows in its buffer with its properties, unread, notified."
  (stanza-test--start "ert-incoming")
  (let* ((body (stanza-test--unique "hello from bob"))
         (before (float-time))
         ;; The replay (all since seq 0: a new client name) may have brought some.
         (unread (if (stanza-test--peer-buffer)
                     (buffer-local-value 'stanza-chat-unread (stanza-test--peer-buffer))
                   0)))
    (stanza-test--ctl "peer-send" body)
    (let* ((msg (stanza-test--wait-body body))
           (buffer (stanza-test--peer-buffer)))
      (with-current-buffer buffer
        (let* ((region (stanza-chat--find 'stanza-msg-id (plist-get msg :id)))
               (pos (car region)))
          (should (stringp (get-text-property pos 'stanza-msg-id)))
          (should (string-prefix-p (concat stanza-test-peer "/")
                                   (get-text-property pos 'stanza-sender)))
          (should (<= (- before 5) (get-text-property pos 'stanza-time) (+ (float-time) 5)))
          (should (null (get-text-property pos 'stanza-state)))
          (should (get-text-property pos 'read-only))
          (should (string-match-p (concat "\\`\\[[0-9][0-9]:[0-9][0-9]\\] <Bob> "
                                          (regexp-quote body) "\n\\'")
                                  (buffer-substring-no-properties (car region) (cdr region)))))
        (should (= stanza-chat-unread (1+ unread))))
      (should (equal (mapcar (lambda (n) (plist-get n :body)) stanza-test--notifications)
                     (list body)))
      (should (memq buffer (stanza-activity)))
      (should (string-search (format "Bob:%d" (1+ unread)) stanza-activity-mode-line-string))
      ;; Shown in a window: no longer unread.
      (switch-to-buffer buffer)
      (stanza--on-window-change nil)
      (should (= (buffer-local-value 'stanza-chat-unread buffer) 0))
      (should-not (stanza-activity))
      (should (equal stanza-activity-mode-line-string "")))))

(ert-deftest stanza-test-send-from-prompt ()
  "Text typed at the prompt reaches the peer; its state goes pending, then acked or further."
  (stanza-test--start "ert-send")
  (let* ((buffer (stanza-open stanza-test-account stanza-test-peer))
         (body (stanza-test--unique "hi bob from emacs")))
    (stanza-test--type buffer body)
    (let ((msg (stanza-test--own-message buffer body)))
      (should msg)
      (should (equal (with-current-buffer buffer (stanza-chat--input)) ""))
      (stanza-test--ctl "peer-wait" body)
      (stanza-test--wait-state buffer (plist-get msg :id) '("acked" "delivered" "displayed"))
      (with-current-buffer buffer
        (let ((region (stanza-chat--find 'stanza-msg-id (plist-get msg :id))))
          (should (string-match-p "✓\n\\'" (buffer-substring-no-properties
                                             (car region) (cdr region)))))))
    ;; bob answers receipts: delivered.
    (let ((msg (stanza-test--own-message buffer body)))
      (stanza-test--wait-state buffer (plist-get msg :id) '("delivered" "displayed")))
    ;; M-p brings it back, M-n returns to the empty input.
    (with-current-buffer buffer
      (call-interactively (key-binding (kbd "M-p")))
      (should (equal (stanza-chat--input) body))
      (call-interactively (key-binding (kbd "M-n")))
      (should (equal (stanza-chat--input) "")))
    ;; /me is sent as is; // sends a leading slash.
    (let ((action (stanza-test--unique "waves")))
      (stanza-test--type buffer (concat "/me " action))
      (stanza-test--ctl "peer-wait" (concat "/me " action))
      (with-current-buffer buffer
        (should (string-search (concat "* alice " action)
                               (buffer-substring-no-properties (point-min) (point-max))))))
    (let ((slash (stanza-test--unique "/not a command")))
      (stanza-test--type buffer (concat "/" slash))
      (stanza-test--ctl "peer-wait" slash))
    ;; A multi-line message from the compose buffer.
    (let ((long (concat (stanza-test--unique "line one") "\nline two")))
      (with-current-buffer buffer
        (stanza-chat-compose)
        (should (eq major-mode 'stanza-compose-mode))
        (insert long)
        (call-interactively (key-binding (kbd "C-c C-c"))))
      (stanza-test--ctl "peer-wait" long)
      (should (stanza-test--own-message buffer long))
      ;; C-c C-e with text in the input corrects the last message, in place.
      (let ((fixed (stanza-test--unique "corrected"))
            (original (plist-get (stanza-test--own-message buffer long) :original-id)))
        (with-current-buffer buffer
          (goto-char (point-max))
          (insert fixed)
          (call-interactively (key-binding (kbd "C-c C-e"))))
        (stanza-test--ctl "peer-wait" fixed)
        (let ((msg (stanza-test--own-message buffer fixed)))
          (should (plist-get msg :edited))
          (should (equal (plist-get msg :original-id) original))
          (should (= 0 (stanza-test--count buffer long)))
          (should (= 1 (stanza-test--count buffer fixed))))))))

(ert-deftest stanza-test-reopen-replays-exactly-once ()
  "Closed and opened again as the same client: what came meanwhile shows once."
  (stanza-test--start "ert-reopen")
  (let ((seen (stanza-test--unique "seen before closing"))
        (away (cl-loop for i from 1 to 3 collect (stanza-test--unique (format "while away %d" i))))
        (back (stanza-test--unique "back again")))
    (stanza-test--ctl "peer-send" seen)
    (stanza-test--wait-body seen)
    (stanza-test--wait (lambda () (>= (stanza-proto-cursor stanza-connection)
                                      (stanza-proto-last-seq stanza-connection)))
                       10 "the daemon to confirm the ack")
    ;; As when Emacs exits: the buffers and everything this Emacs knew are gone.
    (stanza-quit)
    (should-not (stanza-test--peer-buffer))
    (dolist (body away) (stanza-test--ctl "peer-send" body))
    (stanza-test--ctl "stored" (car (last away)))
    (stanza-test--start "ert-reopen")
    (dolist (body away) (stanza-test--wait-body body))
    ;; A live message after them: anything replayed twice would have come before it.
    (stanza-test--ctl "peer-send" back)
    (stanza-test--wait-body back)
    (let ((buffer (stanza-test--peer-buffer)))
      (dolist (body away) (should (= 1 (stanza-test--count buffer body))))
      (should (= 1 (stanza-test--count buffer back)))
      (should (= 0 (stanza-test--count buffer seen)))
      (should (= 4 (buffer-local-value 'stanza-chat-unread buffer))))
    ;; Replayed messages are unread but do not notify; the live one does.
    (should (equal (mapcar (lambda (n) (plist-get n :body)) stanza-test--notifications)
                   (list back)))))

(ert-deftest stanza-test-lost-connection-no-duplicates ()
  "A connection dropped without its acks: back on its own, nothing shown twice."
  (stanza-test--start "ert-drop")
  (let ((first (stanza-test--unique "before the drop"))
        (during (stanza-test--unique "during the drop")))
    (setq stanza-proto--inhibit-ack t)  ; the acks are lost
    (stanza-test--ctl "peer-send" first)
    (stanza-test--wait-body first)
    (delete-process (stanza-proto-process stanza-connection))
    (stanza-test--ctl "peer-send" during)
    (stanza-test--wait (lambda () (and (stanza-connected-p)
                                       (= 2 (stanza-proto-connections stanza-connection))))
                       10 "the connection to come back")
    (stanza-test--wait-body during)
    (let ((barrier (stanza-test--unique "barrier")))
      (stanza-test--ctl "peer-send" barrier)
      (stanza-test--wait-body barrier))
    (let ((buffer (stanza-test--peer-buffer)))
      (should (= 1 (stanza-test--count buffer first)))
      (should (= 1 (stanza-test--count buffer during))))
    (setq stanza-proto--inhibit-ack nil)))

(ert-deftest stanza-test-daemon-restart ()
  "The daemon stopped and started under a live Emacs: it reconnects on its own.
A message typed while the daemon is away waits as pending and goes out after."
  (stanza-test--start "ert-restart")
  (let* ((buffer (stanza-open stanza-test-account stanza-test-peer))
         (process (stanza-proto-process stanza-connection))
         (queued (stanza-test--unique "typed while the daemon was away"))
         (after (stanza-test--unique "after the restart")))
    (stanza-test--ctl "daemon-stop")
    (stanza-test--wait (lambda () (not (stanza-connected-p))) 10 "the connection to end")
    (stanza-test--type buffer queued)
    (let ((msg (stanza-test--own-message buffer queued)))
      (should (equal (stanza-test--state-of buffer (plist-get msg :id)) "pending"))
      (stanza-test--ctl "daemon-start")
      (stanza-test--wait (lambda () (and (stanza-connected-p)
                                         (>= (stanza-proto-connections stanza-connection) 2)))
                         20 "stanza to connect again")
      (should-not (eq process (stanza-proto-process stanza-connection)))
      (stanza-test--ctl "peer-wait" queued)
      (stanza-test--wait-state buffer (plist-get msg :id) '("acked" "delivered" "displayed"))
      (should (= 1 (stanza-test--count buffer queued))))
    (stanza-test--ctl "peer-send" after)
    (stanza-test--wait-body after)
    (should (= 1 (stanza-test--count buffer after)))
    (should (= 1 (stanza-test--ctl "peer-count" queued)))))

(ert-deftest stanza-test-older-messages ()
  "An empty conversation loads its latest messages; older pages come without duplicates."
  (stanza-test--start "ert-history")
  (let ((bodies (cl-loop for i from 1 to 3 collect (stanza-test--unique (format "archived %d" i)))))
    (dolist (body bodies) (stanza-test--ctl "peer-send" body))
    (stanza-test--wait-body (car (last bodies)))
    (kill-buffer (stanza-test--peer-buffer))
    (setq stanza-test--notifications nil)
    (let ((stanza-history-on-open t)
          (stanza-history-page-size 5))
      (let ((buffer (stanza-open stanza-test-account stanza-test-peer)))
        (dolist (body bodies) (stanza-test--wait-body body))
        (let ((messages (stanza-test--messages buffer)))
          (dolist (body bodies) (should (= 1 (stanza-test--count buffer body))))
          (should (cl-every (lambda (m) (plist-get m :history)) messages))
          (should (= 0 (buffer-local-value 'stanza-chat-unread buffer)))
          (should (null stanza-test--notifications)))
        ;; Older pages, until the beginning: every message once, in time order.
        (with-current-buffer buffer
          (dotimes (_ 100)
            (unless stanza-chat--history-complete
              (stanza-chat-load-older)
              (stanza-test--wait (lambda () (not stanza-chat--history-loading)) 20
                                 "a page of history")))
          (should stanza-chat--history-complete)
          (let* ((messages (stanza-test--messages buffer))
                 (ids (mapcar (lambda (m) (plist-get m :id)) messages))
                 (times (mapcar (lambda (m) (plist-get m :time)) messages)))
            (should (> (length messages) 3))
            (should (equal ids (delete-dups (copy-sequence ids))))
          ;; The newest page again: all known, nothing added.
          (setq stanza-chat--history-before nil stanza-chat--history-complete nil)
          (stanza-chat-load-older)
          (stanza-test--wait (lambda () (not stanza-chat--history-loading)) 20
                             "the newest page again")
          (should (equal (mapcar (lambda (m) (plist-get m :id)) (stanza-test--messages buffer))
                         ids))
            (should (equal times (sort (copy-sequence times) #'<)))
            (should (get-text-property (point-min) 'stanza-separator))))))))

(ert-deftest stanza-test-room ()
  "/join, messages and mentions in a room, /topic and /part."
  (stanza-test--start "ert-room")
  (let ((chat (stanza-open stanza-test-account stanza-test-peer))
        (room-buffer (lambda () (stanza-chat-buffer stanza-test-account stanza-test-room)))
        (mention (stanza-test--unique "alice: are you there?"))
        (chatter (stanza-test--unique "just chatting"))
        (mine (stanza-test--unique "hello room"))
        (topic (stanza-test--unique "Release on Friday")))
    (stanza-test--type chat (format "/join %s alice" stanza-test-room))
    (stanza-test--wait (lambda () (equal (plist-get (stanza--room stanza-test-account
                                                                  stanza-test-room)
                                                    :state)
                                         "joined"))
                       20 "the room to be joined")
    (let ((buffer (stanza-test--wait room-buffer 10 "the room's buffer")))
      (should (eq (buffer-local-value 'stanza-chat-kind buffer) 'room))
      (should (eq (window-buffer (selected-window)) buffer))
      ;; We made the room: we may set its topic.  bob comes in.
      (stanza-test--ctl "peer-muc-join" stanza-test-room "bob")
      (with-current-buffer buffer
        (stanza-test--wait (lambda () (string-search "bob joined" (buffer-string)))
                           10 "the notice that bob joined")
        (should (= 1 (how-many "You are in the room as alice" (point-min) (point-max)))))
      ;; Not on screen, so that a mention notifies.
      (switch-to-buffer "*scratch*")
      (stanza-test--ctl "peer-muc-send" stanza-test-room chatter)
      (stanza-test--ctl "peer-muc-send" stanza-test-room mention)
      (let ((msg (stanza-test--wait-body mention room-buffer)))
        (should (plist-get msg :mention))
        (should (equal (plist-get msg :nick) "bob")))
      (should-not (plist-get (stanza-test--wait-body chatter room-buffer) :mention))
      (should (equal (mapcar (lambda (n) (plist-get n :body)) stanza-test--notifications)
                     (list mention)))
      ;; Our message: delivered once the room echoes it.
      (stanza-test--type buffer mine)
      (stanza-test--ctl "peer-wait-room" stanza-test-room mine)
      (let ((msg (stanza-test--own-message buffer mine)))
        (stanza-test--wait-state buffer (plist-get msg :id) '("delivered"))
        (should (= 1 (stanza-test--count buffer mine))))
      (stanza-test--type buffer (concat "/topic " topic))
      (stanza-test--ctl "peer-wait-subject" stanza-test-room topic)
      (stanza-test--wait (lambda () (equal (plist-get (stanza--room stanza-test-account
                                                                    stanza-test-room)
                                                      :subject)
                                           topic))
                         10 "the new subject")
      (with-current-buffer buffer
        (should (string-search (concat "set the topic: " topic) (buffer-string)))
        (should (string-search topic (stanza-chat--header-line))))
      ;; The roster lists the room.
      (stanza-roster--render)
      (with-current-buffer stanza-roster-buffer-name
        (should (string-search (concat "# " stanza-test-room "  joined as alice")
                               (buffer-string))))
      (stanza-test--type buffer "/part")
      (stanza-test--ctl "peer-wait-left" stanza-test-room "alice")
      (stanza-test--wait (lambda () (null (stanza--room stanza-test-account stanza-test-room)))
                         10 "the room to be left")
      (with-current-buffer buffer
        (stanza-test--wait (lambda () (string-search "You left the room" (buffer-string)))
                           10 "the notice that we left")))))

(provide 'stanza-test)
;;; stanza-test.el ends here
