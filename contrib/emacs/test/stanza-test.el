;;; stanza-test.el --- ERT tests of stanza.el  -*- lexical-binding: t; -*-

;;; Commentary:

;; Run by tests/integration/test_emacs.py against the real stanzad,
;; connected to a real Prosody, with a slixmpp peer (bob):
;;
;;   $EMACS -Q --batch -L contrib/emacs -l ert \
;;         -l contrib/emacs/test/stanza-test.el -f ert-run-tests-batch-and-exit
;;
;; $STANZA_TEST_SOCKET is the daemon's socket, $STANZA_TEST_CTL a
;; control socket through which the tests make the peer send and wait
;; for messages, stop and start the daemon, and check what it stored
;; (one JSON array per line, one JSON object back).  Without them the
;; tests that need the daemon are skipped; the ones with a fake daemon
;; (a server socket in this Emacs) run anyway.
;;
;; No fixed sleeps: every wait is an `accept-process-output' loop that
;; ends as soon as its condition holds, with a deadline.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'stanza)

(defvar stanza-test-socket (getenv "STANZA_TEST_SOCKET")
  "The daemon's socket, or nil when there is no daemon.")
(defvar stanza-test-ctl (getenv "STANZA_TEST_CTL")
  "The control socket of the test driver.")
(defvar stanza-test-peer (or (getenv "STANZA_TEST_PEER") "bob@localhost")
  "The peer's bare JID.")
(defvar stanza-test-room (or (getenv "STANZA_TEST_ROOM") "lounge@conference.localhost")
  "A room on the test server.")
(defconst stanza-test-account "home"
  "The daemon's account.")

(defvar stanza-test--notifications nil
  "Notifications made during a test, newest first.")

(defun stanza-test--notify (info)
  "Record the notification INFO."
  (push info stanza-test--notifications))

(defun stanza-test--wait (predicate timeout what)
  "Wait until PREDICATE gives non-nil, for at most TIMEOUT seconds.
Return its value; fail the test with WHAT when time runs out."
  (let ((deadline (+ (float-time) timeout))
        value)
    (while (and (not (setq value (funcall predicate)))
                (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (or value (ert-fail (format "timed out after %ss waiting for %s" timeout what)))))

(defun stanza-test--unique (prefix)
  "PREFIX with a number that no other message of this run has."
  (format "%s %s-%04x" prefix (format-time-string "%s%3N") (random 65536)))

;;;; The control socket

(defvar stanza-test--ctl-process nil "The connection to the control socket.")
(defvar stanza-test--ctl-replies nil "Replies read, oldest first.")

(defun stanza-test--ctl-filter (process bytes)
  "Collect the reply lines in BYTES from PROCESS."
  (let ((pending (concat (or (process-get process 'pending) "") bytes)))
    (while (string-match "\n" pending)
      (let ((line (substring pending 0 (match-beginning 0))))
        (setq pending (substring pending (match-end 0)))
        (setq stanza-test--ctl-replies
              (append stanza-test--ctl-replies
                      (list (json-parse-string (decode-coding-string line 'utf-8)
                                               :object-type 'alist :null-object nil
                                               :false-object nil))))))
    (process-put process 'pending pending)))

(defun stanza-test--ctl (&rest argv)
  "Run the control command ARGV (strings) and return its value."
  (unless (process-live-p stanza-test--ctl-process)
    (setq stanza-test--ctl-process
          (make-network-process :name "stanza-test-ctl" :family 'local
                                :service stanza-test-ctl :coding 'binary :noquery t
                                :filter #'stanza-test--ctl-filter)))
  (setq stanza-test--ctl-replies nil)
  (process-send-string stanza-test--ctl-process
                       (concat (encode-coding-string (json-serialize (vconcat argv)) 'utf-8)
                               "\n"))
  (let ((reply (car (stanza-test--wait (lambda () stanza-test--ctl-replies) 60
                                       (format "the driver to answer %S" argv)))))
    (unless (eq (alist-get 'ok reply) t)
      (ert-fail (format "%S failed: %s" argv (alist-get 'error reply))))
    (alist-get 'value reply)))

;;;; Helpers

(defun stanza-test--options (socket client)
  "Set the options for a test against SOCKET as CLIENT."
  (setq stanza-socket socket
        stanza-client-name client
        stanza-reconnect-delay 0.1
        stanza-reconnect-max-delay 1.0
        stanza-history-on-open nil
        stanza-use-tracking nil
        stanza-notify-function #'stanza-test--notify
        stanza-proto--inhibit-ack nil
        stanza-test--notifications nil))

(defun stanza-test--start (client)
  "Start stanza from nothing, as a new Emacs would, as CLIENT.
Return once the daemon's replay has been handled."
  (unless stanza-test-socket (ert-skip "no daemon: $STANZA_TEST_SOCKET is not set"))
  (stanza-quit)
  (stanza-test--options stanza-test-socket client)
  (stanza)
  (stanza-test--wait (lambda () (stanza-proto-caught-up-p stanza-connection)) 20
                     "the hello and the replay"))

(defun stanza-test--messages (buffer)
  "The message plists in BUFFER, oldest first."
  (with-current-buffer buffer
    (let ((pos (point-min)) out)
      (while (< pos (point-max))
        (let ((msg (get-text-property pos 'stanza-message)))
          (when (and msg (not (plist-get msg :notice))) (push msg out)))
        (setq pos (next-single-property-change pos 'stanza-unit nil (point-max))))
      (nreverse out))))

(defun stanza-test--count (buffer body)
  "How many messages of BUFFER have BODY."
  (if (buffer-live-p buffer)
      (cl-count body (stanza-test--messages buffer)
                :key (lambda (m) (plist-get m :body)) :test #'equal)
    0))

(defun stanza-test--peer-buffer ()
  "The conversation buffer with the peer, or nil."
  (stanza-chat-buffer stanza-test-account stanza-test-peer))

(defun stanza-test--wait-body (body &optional buffer-fn)
  "Wait for a message with BODY in the buffer that BUFFER-FN gives.
Return the message."
  (let ((buffer-fn (or buffer-fn #'stanza-test--peer-buffer)))
    (stanza-test--wait
     (lambda ()
       (let ((buffer (funcall buffer-fn)))
         (and buffer (cl-find body (stanza-test--messages buffer)
                              :key (lambda (m) (plist-get m :body)) :test #'equal))))
     20 (format "%S in the conversation" body))))

(defun stanza-test--type (buffer text)
  "Type TEXT at the prompt of BUFFER and press RET."
  (with-current-buffer buffer
    (goto-char (point-max))
    (insert text)
    (call-interactively (key-binding (kbd "RET")))))

(defun stanza-test--state-of (buffer id)
  "The delivery state of the message ID in BUFFER."
  (with-current-buffer buffer
    (let ((region (stanza-chat--find 'stanza-msg-id id)))
      (and region (get-text-property (car region) 'stanza-state)))))

(defun stanza-test--wait-state (buffer id states)
  "Wait until the message ID in BUFFER is in one of STATES."
  (stanza-test--wait (lambda () (member (stanza-test--state-of buffer id) states)) 20
                     (format "message %s to reach %S (it is %S)" id states
                             (stanza-test--state-of buffer id))))

(defun stanza-test--own-message (buffer body)
  "The outgoing message with BODY in BUFFER."
  (cl-find-if (lambda (m) (and (plist-get m :own) (equal (plist-get m :body) body)))
              (stanza-test--messages buffer)))

;;;; A fake daemon in this Emacs, for what the real one never sends

(defvar stanza-test--fake-last-seq 0 "The `last_seq' the fake daemon's hello reply says.")
(defvar stanza-test--fake-client nil "The fake daemon's connection to stanza.")
(defvar stanza-test--fake-requests nil "Requests the fake daemon got, oldest first.")

(defun stanza-test--fake-send (string)
  "Write STRING (text, encoded as UTF-8; or bytes) to stanza."
  (process-send-string stanza-test--fake-client
                       (if (multibyte-string-p string) (encode-coding-string string 'utf-8) string)))

(defun stanza-test--fake-filter (process bytes)
  "Answer each request in BYTES from PROCESS, as the daemon would, briefly."
  (let ((pending (concat (or (process-get process 'pending) "") bytes)))
    (while (string-match "\n" pending)
      (let* ((line (substring pending 0 (match-beginning 0)))
             (request (json-parse-string (decode-coding-string line 'utf-8)
                                         :object-type 'alist))
             (op (alist-get 'op request))
             (id (alist-get 'id request)))
        (setq pending (substring pending (match-end 0)))
        (setq stanza-test--fake-requests (append stanza-test--fake-requests (list request)))
        (process-send-string
         process
         (concat
          (json-serialize
           (if (equal op "hello")
               `((id . ,id) (ok . t) (version . 1) (daemon . "fake") (client . ,(alist-get 'client request))
                 (cursor . 0) (last_seq . ,stanza-test--fake-last-seq)
                 (accounts . [((account . "home") (jid . "alice@example.org") (state . "online")
                               (bound_jid . "alice@example.org/x") (reason . ""))]))
             `((id . ,id) (ok . t) (items . []) (rooms . []) (cursor . ,(or (alist-get 'seq request) 0)))))
          "\n"))))
    (process-put process 'pending pending)))

(defmacro stanza-test--with-fake-daemon (&rest body)
  "Run BODY with stanza connected to a fake daemon in this Emacs."
  (declare (indent 0) (debug t))
  `(let* ((path (make-temp-name (expand-file-name "stanza-fake-" temporary-file-directory)))
          (server (make-network-process
                   :name "stanza-fake" :family 'local :service path :server t
                   :coding 'binary :noquery t :filter #'stanza-test--fake-filter
                   :log (lambda (_server client _message)
                          (setq stanza-test--fake-client client)))))
     (unwind-protect
         (progn
           (stanza-quit)
           (setq stanza-test--fake-client nil stanza-test--fake-requests nil)
           (stanza-test--options path "ert-fake")
           (stanza)
           (stanza-test--wait (lambda () (stanza-connected-p)) 10 "the fake hello")
           ,@body)
       (stanza-quit)
       (delete-process server)
       (ignore-errors (delete-file path)))))

(defun stanza-test--event-line (seq body &optional stamp)
  "A message event line: SEQ, from bob, with BODY, at STAMP."
  (concat (json-serialize
           `((event . "message") (seq . ,seq) (account . "home")
             (stamp . ,(or stamp "2026-11-25T12:00:00.000Z"))
             (from . "bob@example.org/phone") (to . "alice@example.org/x")
             (type . "chat") (body . ,body) (msg_id . ,(format "m-%d" seq))
             (delayed . :false) (outgoing . :false) (carbon . "") (replaces . "")
             (history . :false)))
          "\n"))

(defun stanza-test--acks ()
  "The seq of each `ack' the fake daemon got."
  (mapcar (lambda (r) (alist-get 'seq r))
          (cl-remove-if-not (lambda (r) (equal (alist-get 'op r) "ack"))
                            stanza-test--fake-requests)))

;;;; Tests with the fake daemon

(ert-deftest stanza-test-malformed-line ()
  "A line that is not JSON is logged and skipped; the connection stays.
Also: a UTF-8 character cut in two by the socket is put back together."
  (let ((stanza-test--fake-last-seq 0))
    (stanza-test--with-fake-daemon
      (let ((process (stanza-proto-process stanza-connection)))
        (stanza-test--fake-send "this is {not json\n")
        (stanza-test--fake-send "[1,2,3]\n")
        (stanza-test--fake-send "\n")
        ;; "é" is C3 A9: the first byte ends one write, the second starts the next.
        (let* ((line (encode-coding-string (stanza-test--event-line 1 "héllo ✓") 'utf-8))
               (cut (1+ (string-search "\303" line))))
          (stanza-test--fake-send (substring line 0 cut))
          (accept-process-output nil 0.05)
          (stanza-test--fake-send (substring line cut)))
        (let ((buffer (lambda () (stanza-chat-buffer "home" "bob@example.org"))))
          (stanza-test--wait-body "héllo ✓" buffer)
          (stanza-test--wait (lambda () (equal (stanza-test--acks) '(1))) 5 "the ack of seq 1")
          (should (eq process (stanza-proto-process stanza-connection)))
          (should (process-live-p process))
          (should (= 1 (stanza-proto-connections stanza-connection)))
          (with-current-buffer stanza-log-buffer-name
            (should (string-search "this is {not json" (buffer-string)))
            (should (string-search "not a JSON object: [1,2,3]" (buffer-string))))
          ;; The next line still works.
          (stanza-test--fake-send (stanza-test--event-line 2 "still here"))
          (stanza-test--wait-body "still here" buffer)
          (should (equal (mapcar (lambda (m) (plist-get m :body))
                                 (stanza-test--messages (funcall buffer)))
                         '("héllo ✓" "still here"))))))))

(ert-deftest stanza-test-chunked-replay ()
  "A long replay is handled in chunks, Emacs runs timers in between, acks are batched."
  (let* ((n 1000)
         (stanza-test--fake-last-seq n)
         (start (float-time (parse-iso8601-time-string "2026-03-01T00:00:00Z")))
         (times (cl-loop for i from 1 to n collect (+ start (* i 180))))
         (seen-mid-replay nil)
         (ticker nil))
    (stanza-test--with-fake-daemon
      (let ((buffer (lambda () (stanza-chat-buffer "home" "bob@example.org")))
            (chunks (stanza-proto-chunks stanza-connection)))
        ;; A timer that looks at the buffer while the replay goes on.
        (setq ticker (run-at-time 0 0.001
                                  (lambda ()
                                    (let* ((b (funcall buffer))
                                           (k (if b (hash-table-count
                                                     (buffer-local-value 'stanza-chat--ids b))
                                                0)))
                                      (when (and (> k 0) (< k n)) (setq seen-mid-replay t))))))
        (unwind-protect
            (progn
              (stanza-test--fake-send
               (apply #'concat
                      (cl-loop for i from 1 to n
                               collect (stanza-test--event-line
                                        i (format "replayed %d" i)
                                        (format-time-string "%FT%T.000Z" (nth (1- i) times) t)))))
              (stanza-test--wait (lambda () (and (funcall buffer)
                                                 (= n (hash-table-count
                                                       (buffer-local-value 'stanza-chat--ids
                                                                           (funcall buffer))))))
                                 30 "all replayed messages")
              (stanza-test--wait (lambda () (equal (car (last (stanza-test--acks))) n)) 5
                                 "the last ack"))
          (cancel-timer ticker))
        (let* ((messages (stanza-test--messages (funcall buffer)))
               (days (delete-dups (mapcar (lambda (time) (format-time-string "%F" time)) times)))
               (acks (stanza-test--acks)))
          (should (equal (mapcar (lambda (m) (plist-get m :body)) messages)
                         (cl-loop for i from 1 to n collect (format "replayed %d" i))))
          ;; One day separator per day, each before the first message of its day.
          (with-current-buffer (funcall buffer)
            (let ((separators nil) (pos (point-min)))
              (while (< pos (point-max))
                (when (get-text-property pos 'stanza-separator)
                  (push (get-text-property pos 'stanza-day) separators))
                (setq pos (next-single-property-change pos 'stanza-unit nil (point-max))))
              (should (equal (nreverse separators) days)))
            (should (= stanza-chat-unread n)))
          (should (>= (- (stanza-proto-chunks stanza-connection) chunks) (/ n stanza-chunk-size)))
          (should seen-mid-replay)
          (should (< 1 (length acks) (/ n 2)))
          (should (equal acks (sort (copy-sequence acks) #'<)))
          ;; Replayed: unread, but no notification.
          (should (null stanza-test--notifications))
          (should (memq (funcall buffer) (stanza-activity))))))))

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
