;;; stanza-test-fake.el --- ERT tests of stanza.el with a fake daemon  -*- lexical-binding: t; -*-

;;; Commentary:

;; A fake daemon in this Emacs (a server socket that answers the JSON
;; ops briefly), for what the real one never sends, and the tests with
;; it: a line that is not JSON, a UTF-8 character cut in two, a long
;; replay handled in chunks with batched acks.  They need no daemon, so
;; they also run alone:
;;
;;   $EMACS -Q --batch -L contrib/emacs -l ert \
;;         -l contrib/emacs/test/stanza-test-fake.el -f ert-run-tests-batch-and-exit
;;
;; tests/integration/test_emacs.py loads this file beside stanza-test.el.

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

(provide 'stanza-test-fake)
;;; stanza-test-fake.el ends here
