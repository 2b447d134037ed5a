;;; stanza-test-lib.el --- Helpers of the ERT tests of stanza.el  -*- lexical-binding: t; -*-

;;; Commentary:

;; What the ERT tests of stanza.el (stanza-test.el, stanza-test-fake.el)
;; share: the test settings read from the environment ($STANZA_TEST_SOCKET,
;; $STANZA_TEST_CTL, $STANZA_TEST_PEER, $STANZA_TEST_ROOM), waits with a
;; deadline (`stanza-test--wait'), the control socket of
;; tests/integration/test_emacs.py (`stanza-test--ctl'), starting stanza
;; against the daemon, and reading messages and their states from the
;; conversation buffers.  Loaded by the test files; it defines no tests.

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

(provide 'stanza-test-lib)
;;; stanza-test-lib.el ends here
