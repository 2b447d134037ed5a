;;; test_irc_erc.el --- ERC's side of test_irc_erc.py  -*- lexical-binding: t -*-

;; Run by test_irc_erc.py as `emacs -Q --batch -l test_irc_erc.el'. ERC (the one that
;; comes with Emacs) connects to stanzad's IRC listener the way a user's ERC does and
;; reports what its buffers show on stderr, one "ERC-..." line per step. It waits for
;; the test's side (bob, a slixmpp peer) through files the test creates in
;; $ERC_TEST_DIR ("go-NAME"), polling while ERC's process runs (accept-process-output).
;;
;; Steps (the test answers each "ERC-STEP NAME" but the last with go-NAME):
;;   registered   ERC connected once (the daemon now knows the client name alice@erc)
;;                and quit; the test has bob write while ERC is away, then says go
;;   replayed     ERC is back and showed the replay (ERC-SHOWS lines); it then types a
;;                line in bob's query and sends it
;;   sent         the test has seen bob receive it; bob writes once more (live), and
;;                alice sends him a line from the JSON socket
;;   done         ERC showed the live message and counted the replayed lines
;;                (ERC-COUNT); it quits, Emacs exits 0

(require 'erc)
(require 'subr-x)

(defvar erc-test-dir (getenv "ERC_TEST_DIR"))
(defvar erc-test-port (string-to-number (getenv "ERC_TEST_PORT")))
(defvar erc-test-password (getenv "ERC_TEST_PASSWORD"))
(defvar erc-test-token (getenv "ERC_TEST_TOKEN"))
(defvar erc-test-timeout 30)

;; What a user of Emacs 28's ERC (5.4) sets: the user name carries the client name
;; (ERC 5.4 has no :user; it sends `erc-email-userid' when `erc-anonymous-login').
(setq erc-email-userid "alice@erc"
      erc-anonymous-login t
      erc-server-auto-reconnect nil
      erc-join-buffer 'bury
      erc-auto-query 'bury
      erc-prompt-for-password nil
      ;; Flood control: ERC holds lines back (3 s a line beyond a 10 s margin), which
      ;; delays QUIT and what is typed by seconds. A local gateway needs none.
      erc-server-flood-penalty 0
      ;; The default modules but spelling (flyspell wants an ispell program).
      erc-modules (remq 'spelling erc-modules))

(defun erc-test-say (fmt &rest args)
  (message "%s" (apply #'format fmt args)))

(defun erc-test-wait (what pred &optional timeout)
  "Run ERC's process until PRED is true; fail after TIMEOUT seconds."
  (let ((deadline (+ (float-time) (or timeout erc-test-timeout)))
        value)
    (while (not (setq value (funcall pred)))
      (when (> (float-time) deadline)
        (erc-test-fail "timed out waiting for %s" what))
      (accept-process-output nil 0.05))
    value))

(defun erc-test-dump ()
  (dolist (b (buffer-list))
    (with-current-buffer b
      (when (derived-mode-p 'erc-mode)
        (erc-test-say "--- buffer %s\n%s" (buffer-name)
                      (buffer-substring-no-properties (point-min) (point-max)))))))

(defun erc-test-fail (fmt &rest args)
  (erc-test-say "ERC-FAIL %s" (apply #'format fmt args))
  (erc-test-dump)
  (kill-emacs 1))

(defun erc-test-step (name)
  "Tell the test we are at step NAME and wait for its go-NAME."
  (erc-test-say "ERC-STEP %s" name)
  (let ((go (expand-file-name (concat "go-" name) erc-test-dir)))
    (erc-test-wait (concat "go-" name) (lambda () (file-exists-p go)) 60)))

(defun erc-test-lines (text)
  "Every (BUFFER . LINE) of an ERC buffer whose line contains TEXT."
  (let (found)
    (dolist (b (buffer-list))
      (with-current-buffer b
        (when (derived-mode-p 'erc-mode)
          (save-excursion
            (goto-char (point-min))
            (while (search-forward text nil t)
              ;; The whole line: erc-stamp's timestamps are fields, and
              ;; line-beginning-position would stop at one.
              (let ((bol (save-excursion (forward-line 0) (point)))
                    (eol (save-excursion (if (search-forward "\n" nil t) (1- (point))
                                           (point-max)))))
                (push (cons (buffer-name)
                            (string-trim-right (buffer-substring-no-properties bol eol)))
                      found))
              (forward-line 1))))))
    (nreverse found)))

(defun erc-test-show (text)
  "Wait until a buffer shows TEXT, report where and how, once per line shown."
  (erc-test-wait (format "%S in a buffer" text) (lambda () (erc-test-lines text)))
  (dolist (hit (erc-test-lines text))
    (erc-test-say "ERC-SHOWS %s\t%s" (car hit) (cdr hit))))

(defun erc-test-connect ()
  (let ((buf (erc :server "127.0.0.1" :port erc-test-port :nick "alice"
                  :password erc-test-password :full-name "Alice")))
    (erc-test-wait "&stanzad" (lambda () (erc-get-buffer "&stanzad")))
    (with-current-buffer (erc-get-buffer "&stanzad")
      (erc-test-wait "the end of NAMES" (lambda () erc-channel-users)))
    buf))

(defun erc-test-quit (server-buffer)
  (with-current-buffer server-buffer
    (erc-cmd-QUIT "bye")
    (erc-test-wait "the end of the connection"
                   (lambda () (not (erc-server-process-alive))))))

;; 1. Once, so that the daemon knows the client name; then away.
(let ((server (erc-test-connect)))
  (erc-test-quit server)
  (erc-test-step "registered"))

;; 2. Back: the replay.
(let ((server (erc-test-connect)))
  (erc-test-show (concat "while away " erc-test-token))
  (erc-test-show (concat "written earlier " erc-test-token))
  (erc-test-step "replayed")
  ;; 3. Type a line in bob's query and send it.
  (let ((query (or (erc-get-buffer "bob") (erc-test-fail "no query buffer for bob"))))
    (with-current-buffer query
      (goto-char (point-max))
      (insert (concat "sent from erc " erc-test-token))
      (erc-send-current-line)))
  (erc-test-show (concat "sent from erc " erc-test-token))
  (erc-test-step "sent")
  ;; 4. A live message from bob after the replay: the replay came before it, once.
  (erc-test-show (concat "live after the replay " erc-test-token))
  (erc-test-show (concat "from the json socket " erc-test-token))
  (dolist (text (list (concat "while away " erc-test-token)
                      (concat "written earlier " erc-test-token)))
    (erc-test-say "ERC-COUNT %d\t%s" (length (erc-test-lines text)) text))
  (erc-test-quit server)
  (erc-test-say "ERC-STEP done")
  (kill-emacs 0))

;;; test_irc_erc.el ends here
