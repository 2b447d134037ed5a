;;; stanza-omemo-test.el --- ERT tests of OMEMO in stanza.el  -*- lexical-binding: t; -*-

;;; Commentary:

;; OMEMO as the Emacs mode shows and controls it (stanza.el, stanza-omemo.el),
;; against a fake daemon in this Emacs (a server socket that answers the
;; JSON ops as docs/json-protocol.md says):
;;
;;   emacs -Q --batch -L contrib/emacs -l ert \
;;         -l contrib/emacs/test/stanza-omemo-test.el -f ert-run-tests-batch-and-exit
;;
;; tests/integration/test_emacs_omemo.py runs it, and the same commands
;; against the real daemon and a python-omemo peer ($STANZA_TEST_SOCKET).
;; No fixed sleeps: each wait ends as soon as its condition holds.

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'stanza)
(require 'stanza-omemo)

(defvar stanza-omemo-test--client nil "The fake daemon's connection to stanza.")
(defvar stanza-omemo-test--requests nil "Requests the fake daemon got, oldest first.")
(defvar stanza-omemo-test--echoed nil "What `message' said during the test, newest first.")

(defun stanza-omemo-test--note-message (text)
  "Record TEXT, what `message' returned (the echo area is not there in batch)."
  (when text (push text stanza-omemo-test--echoed))
  text)

(defun stanza-omemo-test--said (text)
  "Wait until `message' has said TEXT."
  (stanza-omemo-test--wait (lambda () (member text stanza-omemo-test--echoed)) (format "%S said" text)))
(defconst stanza-omemo-test--devices
  [((jid . "alice@example.org") (device . 1378143812) (trust . "own") (listed . t)
    (fingerprint . "2f6a912d ff38fa41 bdf13477 9b810fce 431f3b1f d34a64f0 7c310151 d10cf053"))
   ((jid . "bob@example.org") (device . 986534208) (trust . "blind") (listed . t)
    (fingerprint . "05c3b1e2 aa11bb22 cc33dd44 ee55ff66 00112233 44556677 8899aabb ccddeeff"))
   ((jid . "bob@example.org") (device . 77) (trust . "distrusted") (listed . :false)
    (fingerprint . "aabbccdd 00112233 44556677 8899aabb ccddeeff 00112233 44556677 8899aabb"))]
  "What the fake daemon answers to `omemo-devices'.")

(defun stanza-omemo-test--wait (predicate what)
  "Wait until PREDICATE gives non-nil (at most 10 s); fail with WHAT."
  (let ((deadline (+ (float-time) 10)) value)
    (while (and (not (setq value (funcall predicate))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (or value (ert-fail (format "timed out waiting for %s" what)))))

(defun stanza-omemo-test--answer (request)
  "The fake daemon's reply to REQUEST."
  (let ((id (alist-get 'id request)))
    (pcase (alist-get 'op request)
      ("hello" `((id . ,id) (ok . t) (version . 1) (daemon . "fake") (client . "ert-omemo")
                 (cursor . 0) (last_seq . 0)
                 (accounts . [((account . "home") (jid . "alice@example.org") (state . "online")
                               (bound_jid . "alice@example.org/x") (reason . ""))])))
      ("encryption" `((id . ,id) (ok . t) (encryption . ,(or (alist-get 'set request) "default"))
                      (default . "auto")))
      ("omemo-devices" `((id . ,id) (ok . t) (devices . ,stanza-omemo-test--devices)))
      ((or "omemo-trust" "omemo-distrust")
       (if (equal (alist-get 'device request) 12345)
           `((id . ,id) (ok . :false) (error . ((code . "item-not-found") (message . "no device 12345"))))
         `((id . ,id) (ok . t))))
      (_ `((id . ,id) (ok . t) (items . []) (rooms . []) (cursor . ,(or (alist-get 'seq request) 0)))))))

(defun stanza-omemo-test--filter (process bytes)
  "Answer each request in BYTES from PROCESS."
  (let ((pending (concat (or (process-get process 'pending) "") bytes)))
    (while (string-match "\n" pending)
      (let ((request (json-parse-string (decode-coding-string (substring pending 0 (match-beginning 0)) 'utf-8)
                                        :object-type 'alist)))
        (setq pending (substring pending (match-end 0)))
        (setq stanza-omemo-test--requests (append stanza-omemo-test--requests (list request)))
        (process-send-string process (concat (encode-coding-string
                                              (json-serialize (stanza-omemo-test--answer request)) 'utf-8)
                                             "\n"))))
    (process-put process 'pending pending)))

(defmacro stanza-omemo-test--with-daemon (&rest body)
  "Run BODY with stanza connected to the fake daemon."
  (declare (indent 0) (debug t))
  `(let* ((path (make-temp-name (expand-file-name "stanza-omemo-" temporary-file-directory)))
          (server (make-network-process
                   :name "stanza-omemo-fake" :family 'local :service path :server t
                   :coding 'binary :noquery t :filter #'stanza-omemo-test--filter
                   :log (lambda (_server client _message) (setq stanza-omemo-test--client client)))))
     (advice-add 'message :filter-return #'stanza-omemo-test--note-message)
     (unwind-protect
         (progn
           (stanza-quit)
           (setq stanza-omemo-test--requests nil stanza-omemo-test--echoed nil
                 stanza-socket path stanza-client-name "ert-omemo" stanza-history-on-open nil
                 stanza-use-tracking nil stanza-notify-function #'ignore)
           (stanza)
           (stanza-omemo-test--wait #'stanza-connected-p "the fake hello")
           ,@body)
       (advice-remove 'message #'stanza-omemo-test--note-message)
       (stanza-quit)
       (delete-process server)
       (ignore-errors (delete-file path)))))

(defun stanza-omemo-test--event (seq body &rest fields)
  "Send a message event from bob: SEQ, BODY and the extra FIELDS (an alist)."
  (process-send-string
   stanza-omemo-test--client
   (concat (encode-coding-string
            (json-serialize
             `((event . "message") (seq . ,seq) (account . "home") (stamp . "2026-11-25T12:00:00.000Z")
               (from . "bob@example.org/phone") (to . "alice@example.org/x") (type . "chat")
               (body . ,body) (msg_id . ,(format "m-%d" seq)) (delayed . :false) (outgoing . :false)
               ,@(car fields)))
            'utf-8)
           "\n")))

(defun stanza-omemo-test--bob ()
  "The conversation with bob."
  (stanza-chat-buffer "home" "bob@example.org"))

(defun stanza-omemo-test--line-of (needle)
  "The line of bob's conversation that contains NEEDLE, once there."
  (stanza-omemo-test--wait
   (lambda ()
     (let ((b (stanza-omemo-test--bob)))
       (and b (with-current-buffer b
                (goto-char (point-min))
                (and (search-forward needle nil t)
                     (cons (buffer-substring (line-beginning-position) (line-end-position))
                           (point)))))))
   (format "%S in the conversation" needle)))

(defun stanza-omemo-test--last-request (op)
  "The last request OP the fake daemon got."
  (car (last (cl-remove-if-not (lambda (r) (equal (alist-get 'op r) op)) stanza-omemo-test--requests))))

(ert-deftest stanza-omemo-test-lock-on-encrypted-messages ()
  "Encrypted messages get the lock, an unusual device its warning, an undecryptable one its error."
  (stanza-omemo-test--with-daemon
    (stanza-omemo-test--event 1 "in clear" nil)
    (stanza-omemo-test--event 2 "sealed" '((encryption . "omemo") (trust . "blind")))
    (stanza-omemo-test--event 3 "from a new key" '((encryption . "omemo") (trust . "changed")))
    (stanza-omemo-test--event 4 "" '((encryption . "omemo") (error . "not encrypted for this device")))
    (stanza-omemo-test--event 5 "/me waves" '((encryption . "omemo") (trust . "trusted")))
    (should (string-suffix-p "<bob@example.org> in clear" (car (stanza-omemo-test--line-of "in clear"))))
    (let ((sealed (stanza-omemo-test--line-of "sealed")))
      (should (string-suffix-p "<bob@example.org> 🔒 sealed" (car sealed)))
      (with-current-buffer (stanza-omemo-test--bob)
        (let ((lock (- (cdr sealed) (length "🔒 sealed"))))
          (should (eq (get-text-property lock 'face) 'stanza-encrypted))
          (should (equal (get-text-property lock 'help-echo) "Encrypted (omemo), device blind")))))
    (let ((changed (stanza-omemo-test--line-of "from a new key")))
      (should (string-suffix-p "<bob@example.org> 🔒 [device changed] from a new key" (car changed)))
      (with-current-buffer (stanza-omemo-test--bob)
        (should (eq (get-text-property (- (cdr changed) (length "changed] from a new key")) 'face)
                    'stanza-encryption-warning))))
    (let ((failed (stanza-omemo-test--line-of "not decrypted")))
      (should (string-suffix-p "<bob@example.org> [OMEMO message not decrypted: not encrypted for this device]" (car failed)))
      (with-current-buffer (stanza-omemo-test--bob)
        (should (eq (get-text-property (1- (cdr failed)) 'face) 'stanza-state-failed))))
    (should (string-suffix-p "* bob@example.org 🔒 waves" (car (stanza-omemo-test--line-of "waves"))))
    ;; The indicator is an option; "" shows none.
    (let ((stanza-encrypted-indicator ""))
      (stanza-omemo-test--event 6 "quiet" '((encryption . "omemo") (trust . "blind")))
      (should (string-suffix-p "<bob@example.org> quiet" (car (stanza-omemo-test--line-of "quiet")))))))

(ert-deftest stanza-omemo-test-encryption-of-the-conversation ()
  "`stanza-encryption' in a conversation sets it for that contact, or shows it."
  (stanza-omemo-test--with-daemon
    (stanza-omemo-test--event 1 "hi" nil)
    (stanza-omemo-test--line-of "hi")
    (with-current-buffer (stanza-omemo-test--bob)
      (cl-letf (((symbol-function 'completing-read) (lambda (&rest _) "omemo")))
        (call-interactively #'stanza-encryption)))
    (let ((r (stanza-omemo-test--wait (lambda () (stanza-omemo-test--last-request "encryption"))
                                      "the encryption request")))
      (should (equal (alist-get 'account r) "home"))
      (should (equal (alist-get 'jid r) "bob@example.org"))
      (should (equal (alist-get 'set r) "omemo")))
    (stanza-omemo-test--said "Stanza: encryption with bob@example.org: omemo")
    (setq stanza-omemo-test--requests nil)
    (stanza-encryption "home" "bob@example.org" "")
    (let ((r (stanza-omemo-test--wait (lambda () (stanza-omemo-test--last-request "encryption"))
                                      "the second request")))
      (should-not (assq 'set r)))
    (stanza-omemo-test--said "Stanza: encryption with bob@example.org: default (the account's: auto)")
    (should-error (stanza-encryption "home" "bob@example.org" "always") :type 'user-error)))

(ert-deftest stanza-omemo-test-devices-trust-distrust ()
  "`stanza-omemo-devices' lists devices with fingerprints; t and d on a line trust, distrust."
  (stanza-omemo-test--with-daemon
    (stanza-omemo-devices "home" "bob@example.org")
    (let ((buffer (stanza-omemo-test--wait (lambda () (get-buffer "*stanza-omemo: home bob@example.org*"))
                                           "the device list")))
      (with-current-buffer buffer
        (should (derived-mode-p 'stanza-omemo-devices-mode))
        (let ((text (buffer-string)))
          (should (string-match-p "^alice@example.org +1378143812  own +2f6a912d ff38fa41 bdf13477" text))
          (should (string-match-p "^bob@example.org +986534208  blind +05c3b1e2 aa11bb22 .* ccddeeff$" text))
          (should (string-match-p "^bob@example.org +77  distrusted +aabbccdd .*  (not listed)$" text)))
        (goto-char (point-min))
        (search-forward "986534208")
        (call-interactively (key-binding "t"))
        (let ((r (stanza-omemo-test--wait (lambda () (stanza-omemo-test--last-request "omemo-trust"))
                                          "the trust request")))
          (should (equal (list (alist-get 'account r) (alist-get 'jid r) (alist-get 'device r))
                         '("home" "bob@example.org" 986534208))))
        (goto-char (point-min))
        (search-forward "  77  ")
        (call-interactively (key-binding "d"))
        (let ((r (stanza-omemo-test--wait (lambda () (stanza-omemo-test--last-request "omemo-distrust"))
                                          "the distrust request")))
          (should (equal (alist-get 'device r) 77)))
        ;; Our own device is not ours to trust.
        (goto-char (point-min))
        (search-forward "1378143812")
        (should-error (stanza-omemo-trust stanza-omemo--account "x" 0) :type 'user-error)
        (should-error (call-interactively #'stanza-omemo-trust) :type 'user-error)))
    ;; From anywhere: the device read; an unknown one is refused with the daemon's reason.
    (setq stanza-omemo-test--requests nil)
    (stanza-omemo-trust "home" "bob@example.org" 12345)
    (stanza-omemo-test--wait (lambda () (stanza-omemo-test--last-request "omemo-trust")) "the request")
    (stanza-omemo-test--said "Stanza: omemo-trust: no device 12345")))

;;;; Against the real daemon (tests/integration/test_emacs_omemo.py)

(defun stanza-omemo-test--env (name)
  "The value of $STANZA_OMEMO_NAME, or skip the test."
  (or (getenv (concat "STANZA_OMEMO_" name)) (ert-skip (format "$STANZA_OMEMO_%s is not set" name))))

(ert-deftest stanza-omemo-test-real-daemon ()
  "With stanzad and a python-omemo peer: the lock, the fingerprint, encryption, trust, a send.
The driver has made the peer send an encrypted message before Emacs started; it checks
after Emacs exits that the message typed here reached the peer encrypted."
  (let* ((socket (stanza-omemo-test--env "SOCKET"))
         (peer (stanza-omemo-test--env "PEER"))
         (text (stanza-omemo-test--env "TEXT"))
         (device (string-to-number (stanza-omemo-test--env "DEVICE")))
         (fingerprint (stanza-omemo-test--env "FINGERPRINT"))
         (reply (stanza-omemo-test--env "REPLY"))
         (buffer (lambda () (stanza-chat-buffer "home" peer))))
    (advice-add 'message :filter-return #'stanza-omemo-test--note-message)
    (unwind-protect
        (progn
          (stanza-quit)
          (setq stanza-socket socket stanza-client-name "ert-omemo" stanza-history-on-open nil
                stanza-use-tracking nil stanza-notify-function #'ignore stanza-omemo-test--echoed nil)
          (stanza)
          (stanza-omemo-test--wait (lambda () (and stanza-connection (stanza-proto-caught-up-p stanza-connection)))
                                   "the hello and the replay")
          ;; The encrypted message, replayed, with its lock.
          (let ((msg (stanza-omemo-test--wait
                      (lambda () (and (funcall buffer)
                                      (with-current-buffer (funcall buffer)
                                        (goto-char (point-min))
                                        (and (search-forward text nil t)
                                             (get-text-property (1- (point)) 'stanza-message)))))
                      "the encrypted message")))
            (should (equal (plist-get msg :encryption) "omemo"))
            (with-current-buffer (funcall buffer)
              (should (string-suffix-p (concat "🔒 " text)
                                       (buffer-substring (line-beginning-position) (line-end-position))))))
          ;; The peer's device with the fingerprint python-omemo computes.
          (stanza-omemo-devices "home" peer)
          (let ((list (stanza-omemo-test--wait (lambda () (get-buffer (format "*stanza-omemo: home %s*" peer)))
                                               "the device list")))
            (with-current-buffer list
              (should (string-match-p (format "^%s +%d  blind +%s$" (regexp-quote peer) device
                                              (regexp-quote fingerprint))
                                      (buffer-string)))
              (should (string-match-p "^alice@localhost +[0-9]+  own +[0-9a-f ]+$" (buffer-string)))))
          ;; Encryption for this conversation, and trust, from the commands.
          (with-current-buffer (funcall buffer)
            (stanza-encryption stanza-chat-account stanza-chat-peer "omemo"))
          (stanza-omemo-test--said (format "Stanza: encryption with %s: omemo" peer))
          (stanza-omemo-trust "home" peer device)
          (stanza-omemo-test--said (format "Stanza: device %d of %s is trusted" device peer))
          ;; A reply typed at the prompt: acknowledged by the server.
          (with-current-buffer (funcall buffer)
            (goto-char (point-max))
            (insert reply)
            (stanza-chat-send-input))
          (stanza-omemo-test--wait
           (lambda ()
             (with-current-buffer (funcall buffer)
               (goto-char (point-min))
               (and (search-forward reply nil t)
                    (member (get-text-property (1- (point)) 'stanza-state) '("acked" "delivered")))))
           "the reply acknowledged"))
      (advice-remove 'message #'stanza-omemo-test--note-message)
      (stanza-quit))))

(provide 'stanza-omemo-test)
;;; stanza-omemo-test.el ends here
