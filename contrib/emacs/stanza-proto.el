;;; stanza-proto.el --- The JSON-lines transport of stanza.el  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; The connection between Emacs and stanzad's Unix socket, as the
;; contract in docs/json-protocol.md describes it, with no user
;; interface: stanza.el builds the buffers on top of it.
;;
;; A `stanza-proto' object owns one network process.  Its filter cuts
;; the bytes at "\n", decodes each line as UTF-8 and parses it with
;; `json-parse-string' inside `condition-case': a line that is not a
;; JSON object is written to the *stanza-log* buffer and skipped, the
;; connection stays.  Parsed lines wait in a queue that a timer works
;; off a chunk at a time (`stanza-chunk-size'), so a replay of
;; thousands of events never blocks Emacs; after each chunk one `ack'
;; confirms everything handled so far.
;;
;; Requests carry integer ids; the reply is handed to the callback of
;; its request.  The first request is `hello' with a stable client name
;; (`stanza-client-name'), so the daemon replays only the events this
;; name has not confirmed.  When the daemon goes away the connection is
;; opened again with a growing delay; the new `hello' asks for the
;; events after the last one handled (`since'), and events are handled
;; at most once per Emacs session even when an `ack' was lost.

;;; Code:

(require 'cl-lib)
(require 'subr-x)

(defgroup stanza nil
  "Chat over XMPP through the stanzad daemon."
  :group 'comm
  :prefix "stanza-")

(defcustom stanza-socket nil
  "The Unix socket of stanzad, or nil to find it as stanzactl does.
nil means: $STANZAD_SOCKET when it is set, else
$XDG_RUNTIME_DIR/stanzad.sock, else stanzad.sock in the default
state directory ($XDG_STATE_HOME/stanzad or ~/.local/state/stanzad).
Set it when the daemon's config names another `socket'."
  :type '(choice (const :tag "Find it" nil) file)
  :group 'stanza)

(defcustom stanza-client-name "emacs"
  "The name this Emacs gives itself in `hello'.
The daemon remembers, per name, up to which event the client has
confirmed, and replays only later events when a client of that
name connects again.  Keep it stable; give each Emacs that runs at
the same time its own name.  It has 1 to 64 characters, each a
letter, a digit, a dot, an underscore or a dash."
  :type 'string
  :group 'stanza)

(defcustom stanza-reconnect-delay 1.0
  "Seconds before the first attempt to connect again after a loss.
Each failed attempt doubles the delay, up to
`stanza-reconnect-max-delay'."
  :type 'number
  :group 'stanza)

(defcustom stanza-reconnect-max-delay 30.0
  "The longest wait, in seconds, between two attempts to connect."
  :type 'number
  :group 'stanza)

(defcustom stanza-chunk-size 100
  "How many lines from the daemon are handled in one go.
Between two chunks Emacs reads input and redisplays, so a long
replay does not freeze it; an `ack' follows each chunk."
  :type 'integer
  :group 'stanza)

(defcustom stanza-log-traffic nil
  "When non-nil, write every line sent and received to *stanza-log*.
Lines that could not be parsed are logged in any case."
  :type 'boolean
  :group 'stanza)

(defcustom stanza-log-max-lines 2000
  "The number of lines the *stanza-log* buffer keeps."
  :type 'integer
  :group 'stanza)

(defconst stanza-log-buffer-name "*stanza-log*"
  "The name of the buffer where stanza.el logs what went wrong.")

(defvar stanza-proto--inhibit-ack nil
  "When non-nil, handled events are not confirmed with `ack'.
For tests that need to lose acks on purpose.")

(cl-defstruct (stanza-proto (:constructor stanza-proto--create)
                            (:copier nil))
  "One connection to the daemon's JSON-lines socket, and what it remembers.
The slots hold the socket path and client name, the network process,
the status (closed, connecting, hello or ready), bytes not yet
ending a line, the queue of parsed lines, request callbacks by id,
and the sequence numbers: `last-seq' (highest event handled),
`acked' (highest sent in an `ack'), `cursor' (what the daemon
confirmed) and `replay-until' (the `last_seq' of the hello reply:
events up to it are replayed, later ones live)."
  socket client process (status 'closed)
  (pending nil) (queue-head nil) (queue-tail nil)
  (next-id 1) (callbacks (make-hash-table :test 'eql))
  handler status-function hello-function
  (last-seq 0) (acked 0) (cursor 0) (replay-until 0)
  (retries 0) reconnect-timer drain-timer (wanted nil)
  (connections 0) hello-reply (chunks 0))

;;;; Logging

(defun stanza-log (format-string &rest args)
  "Append a line to *stanza-log*: FORMAT-STRING formatted with ARGS."
  (let ((buffer (get-buffer-create stanza-log-buffer-name)))
    (with-current-buffer buffer
      (let ((inhibit-read-only t)
            (at-end (= (point) (point-max))))
        (save-excursion
          (goto-char (point-max))
          (insert (format-time-string "%F %T.%3N ")
                  (apply #'format format-string args) "\n")
          (let ((excess (- (count-lines (point-min) (point-max))
                           stanza-log-max-lines)))
            (when (> excess 0)
              (goto-char (point-min))
              (forward-line excess)
              (delete-region (point-min) (point)))))
        (when at-end (goto-char (point-max)))
        (unless (derived-mode-p 'special-mode) (special-mode))))))

;;;; Socket path

(defun stanza-proto-default-socket ()
  "Return the daemon's socket, found as stanzactl does without a config."
  (cond
   ((and (getenv "STANZAD_SOCKET") (not (string-empty-p (getenv "STANZAD_SOCKET"))))
    (getenv "STANZAD_SOCKET"))
   ((and (getenv "XDG_RUNTIME_DIR") (not (string-empty-p (getenv "XDG_RUNTIME_DIR"))))
    (expand-file-name "stanzad.sock" (getenv "XDG_RUNTIME_DIR")))
   (t (expand-file-name "stanzad/stanzad.sock"
                        (or (getenv "XDG_STATE_HOME") "~/.local/state")))))

;;;; Opening and closing

(cl-defun stanza-proto-open (&key socket client handler status-function
                                  hello-function)
  "Connect to the daemon and return the new `stanza-proto' object.
SOCKET is the socket path (default: `stanza-socket', else
`stanza-proto-default-socket'); CLIENT the client name (default:
`stanza-client-name').  HANDLER is called with the object and each
event (an alist); HELLO-FUNCTION with the object and the hello reply
after each successful `hello'; STATUS-FUNCTION with the object and
the new status (closed, connecting, hello, ready) when it changes.
The connection is opened again by itself until `stanza-proto-close'."
  (let ((proto (stanza-proto--create
                :socket (or socket stanza-socket (stanza-proto-default-socket))
                :client (or client stanza-client-name)
                :handler handler :status-function status-function
                :hello-function hello-function :wanted t)))
    (stanza-proto--connect proto)
    proto))

(defun stanza-proto--set-status (proto status)
  "Set the status of PROTO to STATUS and tell its status function."
  (unless (eq status (stanza-proto-status proto))
    (setf (stanza-proto-status proto) status)
    (when (stanza-proto-status-function proto)
      (condition-case err
          (funcall (stanza-proto-status-function proto) proto status)
        (error (stanza-log "status function failed: %S" err))))))

(defun stanza-proto--connect (proto)
  "Open the socket of PROTO and say hello; on failure, try again later."
  (setf (stanza-proto-reconnect-timer proto) nil)
  (when (stanza-proto-wanted proto)
    (stanza-proto--set-status proto 'connecting)
    (condition-case err
        (let ((process (make-network-process
                        :name "stanza"
                        :family 'local
                        :service (expand-file-name (stanza-proto-socket proto))
                        :coding 'binary
                        :noquery t
                        :filter #'stanza-proto--filter
                        :sentinel #'stanza-proto--sentinel)))
          (process-put process 'stanza-proto proto)
          (setf (stanza-proto-process proto) process
                (stanza-proto-pending proto) nil)
          (stanza-log "connected to %s" (stanza-proto-socket proto))
          (stanza-proto--hello proto))
      (error
       (stanza-log "cannot connect to %s: %s" (stanza-proto-socket proto)
                   (error-message-string err))
       (stanza-proto--set-status proto 'closed)
       (stanza-proto--schedule-reconnect proto)))))

(defun stanza-proto--hello (proto)
  "Send `hello' on PROTO's fresh connection.
After a lost connection, `since' asks for what came after the last
event handled in this session."
  (stanza-proto--set-status proto 'hello)
  (let ((fields `((client . ,(stanza-proto-client proto)))))
    (when (> (stanza-proto-last-seq proto) 0)
      (push (cons 'since (stanza-proto-last-seq proto)) fields))
    (stanza-proto-request proto "hello" fields
                          (lambda (reply) (stanza-proto--on-hello proto reply)))))

(defun stanza-proto--on-hello (proto reply)
  "Handle the REPLY to PROTO's `hello'."
  (cond
   ((equal (alist-get 'code (alist-get 'error reply)) "disconnected"))
   ((not (eq (alist-get 'ok reply) t))
    (let ((error (alist-get 'error reply)))
      (stanza-log "hello refused: %s: %s" (alist-get 'code error)
                  (alist-get 'message error))
      (message "Stanza: the daemon refused hello: %s" (alist-get 'message error))
      (stanza-proto-close proto)))
   ((< (or (alist-get 'last_seq reply) 0) (stanza-proto-last-seq proto))
    ;; A daemon with a new store: its numbers start again, and `since'
    ;; skipped its events.  Say hello again without it.
    (stanza-log "the daemon's last event is %s, before ours (%d): a new store"
                (alist-get 'last_seq reply) (stanza-proto-last-seq proto))
    (setf (stanza-proto-last-seq proto) 0
          (stanza-proto-acked proto) 0
          (stanza-proto-retries proto) 0)
    (let ((process (stanza-proto-process proto)))
      (setf (stanza-proto-process proto) nil)
      (when process (delete-process process)))
    (stanza-proto--closed proto))
   (t
    (let ((last (or (alist-get 'last_seq reply) 0)))
      ;; Nothing up to the cursor comes again.
      (setf (stanza-proto-last-seq proto) (max (stanza-proto-last-seq proto)
                                               (or (alist-get 'cursor reply) 0)))
      (setf (stanza-proto-replay-until proto) last
            (stanza-proto-cursor proto) (or (alist-get 'cursor reply) 0)
            (stanza-proto-acked proto) (max (stanza-proto-last-seq proto)
                                            (or (alist-get 'cursor reply) 0))
            (stanza-proto-retries proto) 0
            (stanza-proto-hello-reply proto) reply)
      (cl-incf (stanza-proto-connections proto))
      (stanza-log "hello as %s: cursor %s, last event %s"
                  (stanza-proto-client proto) (alist-get 'cursor reply) last)
      (stanza-proto--set-status proto 'ready)
      (when (stanza-proto-hello-function proto)
        (funcall (stanza-proto-hello-function proto) proto reply))))))

(defun stanza-proto-close (proto &optional wait)
  "Close PROTO's connection for good (no reconnection).
Handled events are confirmed first; with WAIT, wait up to that many
seconds for the daemon to answer that `ack'."
  (setf (stanza-proto-wanted proto) nil)
  (when (stanza-proto-reconnect-timer proto)
    (cancel-timer (stanza-proto-reconnect-timer proto))
    (setf (stanza-proto-reconnect-timer proto) nil))
  (let ((process (stanza-proto-process proto)))
    (when (and process (process-live-p process))
      ;; Whatever is queued is not handled: confirm only what was.
      (let ((id (stanza-proto--flush-ack proto)))
        (when (and id wait)
          (let ((deadline (+ (float-time) wait)))
            (while (and (gethash id (stanza-proto-callbacks proto))
                        (process-live-p process)
                        (< (float-time) deadline))
              (accept-process-output process 0.05)))))
      (delete-process process)))
  (stanza-proto--closed proto))

(defun stanza-proto-live-p (proto)
  "Non-nil when PROTO is connected and its `hello' was answered."
  (and proto (eq (stanza-proto-status proto) 'ready)
       (process-live-p (stanza-proto-process proto))))

(defun stanza-proto--closed (proto)
  "Forget PROTO's connection: fail its requests, maybe reconnect."
  (when (stanza-proto-drain-timer proto)
    (cancel-timer (stanza-proto-drain-timer proto))
    (setf (stanza-proto-drain-timer proto) nil))
  (setf (stanza-proto-process proto) nil
        (stanza-proto-pending proto) nil
        (stanza-proto-queue-head proto) nil
        (stanza-proto-queue-tail proto) nil)
  (let ((callbacks nil))
    (maphash (lambda (id callback) (push (cons id callback) callbacks))
             (stanza-proto-callbacks proto))
    (clrhash (stanza-proto-callbacks proto))
    (stanza-proto--set-status proto 'closed)
    (dolist (entry (sort callbacks (lambda (a b) (< (car a) (car b)))))
      (stanza-proto--call (cdr entry)
                          `((id . ,(car entry)) (ok . nil)
                            (error . ((code . "disconnected")
                                      (message . "the connection to stanzad ended")))))))
  (stanza-proto--schedule-reconnect proto))

(defun stanza-proto--schedule-reconnect (proto)
  "Arrange for PROTO to connect again, after a delay that grows."
  (when (and (stanza-proto-wanted proto)
             (not (stanza-proto-reconnect-timer proto)))
    (let* ((n (stanza-proto-retries proto))
           (delay (min stanza-reconnect-max-delay
                       (* stanza-reconnect-delay (expt 2 (min n 16)))))
           ;; Up to a tenth more, so that clients do not all come back at once.
           (delay (* delay (+ 1.0 (/ (random 100) 1000.0)))))
      (cl-incf (stanza-proto-retries proto))
      (stanza-log "connecting again in %.1fs" delay)
      (setf (stanza-proto-reconnect-timer proto)
            (run-at-time delay nil #'stanza-proto--connect proto)))))

(defun stanza-proto-reconnect-now (proto)
  "Connect PROTO again at once, without waiting for its timer."
  (setf (stanza-proto-wanted proto) t
        (stanza-proto-retries proto) 0)
  (when (stanza-proto-reconnect-timer proto)
    (cancel-timer (stanza-proto-reconnect-timer proto))
    (setf (stanza-proto-reconnect-timer proto) nil))
  (unless (process-live-p (stanza-proto-process proto))
    (stanza-proto--connect proto)))

(defun stanza-proto--sentinel (process event)
  "Handle the end of PROCESS, described by EVENT."
  (let ((proto (process-get process 'stanza-proto)))
    (when (and proto (eq process (stanza-proto-process proto))
               (not (process-live-p process)))
      (stanza-log "connection ended: %s" (string-trim event))
      (stanza-proto--closed proto))))

;;;; Reading

(defun stanza-proto--filter (process bytes)
  "Cut BYTES from PROCESS into lines and queue what they parse to."
  (let ((proto (process-get process 'stanza-proto)))
    (when (and proto (eq process (stanza-proto-process proto)))
      (let ((start 0) nl)
        (while (setq nl (string-search "\n" bytes start))
          (let ((line (if (stanza-proto-pending proto)
                          (prog1 (apply #'concat
                                        (nreverse (cons (substring bytes start nl)
                                                        (stanza-proto-pending proto))))
                            (setf (stanza-proto-pending proto) nil))
                        (substring bytes start nl))))
            (stanza-proto--line proto line))
          (setq start (1+ nl)))
        (when (< start (length bytes))
          (push (substring bytes start) (stanza-proto-pending proto))))
      (stanza-proto--schedule-drain proto))))

(defun stanza-proto--line (proto bytes)
  "Parse one line of BYTES (UTF-8) from PROTO's daemon and queue it.
A line that is not a JSON object is logged and dropped."
  (let ((text (decode-coding-string bytes 'utf-8 t)))
    (unless (string-empty-p (string-trim text))
      (when stanza-log-traffic (stanza-log "<- %s" text))
      (let ((object (condition-case err
                        (json-parse-string text :object-type 'alist
                                           :array-type 'array
                                           :null-object nil :false-object nil)
                      (error
                       (stanza-log "ignored a line that is not JSON (%s): %s"
                                   (error-message-string err)
                                   (truncate-string-to-width text 500))
                       :bad))))
        (cond
         ((eq object :bad))
         ((not (listp object))
          (stanza-log "ignored a line that is not a JSON object: %s"
                      (truncate-string-to-width text 500)))
         (object
          (let ((cell (list object)))
            (if (stanza-proto-queue-tail proto)
                (setcdr (stanza-proto-queue-tail proto) cell)
              (setf (stanza-proto-queue-head proto) cell))
            (setf (stanza-proto-queue-tail proto) cell))))))))

(defun stanza-proto--schedule-drain (proto)
  "Make sure a timer will handle PROTO's queued lines."
  (when (and (stanza-proto-queue-head proto)
             (not (stanza-proto-drain-timer proto)))
    (setf (stanza-proto-drain-timer proto)
          (run-at-time 0 nil #'stanza-proto--drain proto))))

(defun stanza-proto--drain (proto)
  "Handle up to `stanza-chunk-size' queued lines of PROTO, then ack.
More lines are left to the next run of the timer."
  (setf (stanza-proto-drain-timer proto) nil)
  (let ((n 0))
    (while (and (stanza-proto-queue-head proto)
                (< n (max 1 stanza-chunk-size)))
      (let ((object (pop (stanza-proto-queue-head proto))))
        (unless (stanza-proto-queue-head proto)
          (setf (stanza-proto-queue-tail proto) nil))
        (cl-incf n)
        (stanza-proto--dispatch proto object)))
    (cl-incf (stanza-proto-chunks proto))
    (stanza-proto--flush-ack proto)
    (stanza-proto--schedule-drain proto)))

(defun stanza-proto--dispatch (proto object)
  "Hand OBJECT, an event or a reply read from PROTO, to whom it concerns."
  (if (alist-get 'event object)
      (let ((seq (or (alist-get 'seq object) 0)))
        (when (and (integerp seq) (> seq 0))
          (if (<= seq (stanza-proto-last-seq proto))
              (setq object nil)         ; handled before this connection
            (setf (stanza-proto-last-seq proto) seq)))
        (when (and object (stanza-proto-handler proto))
          (condition-case err
              (funcall (stanza-proto-handler proto) proto object)
            (error (stanza-log "handling event %s failed: %S"
                               (alist-get 'seq object) err)))))
    (let* ((id (alist-get 'id object))
           (callback (and id (gethash id (stanza-proto-callbacks proto)))))
      (cond
       (callback
        (remhash id (stanza-proto-callbacks proto))
        (stanza-proto--call callback object))
       ((not (eq (alist-get 'ok object) t))
        (let ((error (alist-get 'error object)))
          (stanza-log "error from the daemon: %s: %s" (alist-get 'code error)
                      (alist-get 'message error))))))))

(defun stanza-proto--call (callback reply)
  "Call CALLBACK with REPLY; an error in it is logged, not raised."
  (when callback
    (condition-case err
        (funcall callback reply)
      (error (stanza-log "reply callback failed: %S" err)))))

;;;; Writing

(defun stanza-proto-send-object (proto object)
  "Write OBJECT (an alist) as one line to PROTO's daemon.
Return non-nil when it was written."
  (let ((process (stanza-proto-process proto)))
    ;; Read what is waiting first: when the daemon has gone, its end of
    ;; file makes the process dead here, instead of a write into a closed
    ;; socket (which kills Emacs with SIGPIPE in batch mode).  Only this
    ;; process and no timers (JUST-THIS-ONE an integer): no re-entry.
    (when (process-live-p process)
      (accept-process-output process 0 nil 0))
    (when (process-live-p process)
      (let ((line (encode-coding-string (json-serialize object) 'utf-8)))
        (when stanza-log-traffic
          (stanza-log "-> %s" (decode-coding-string line 'utf-8)))
        (condition-case err
            (progn (process-send-string process (concat line "\n")) t)
          (error (stanza-log "cannot write to the daemon: %s"
                             (error-message-string err))
                 nil))))))

(defun stanza-proto-request (proto op fields &optional callback)
  "Send the request OP with FIELDS (an alist) on PROTO.
CALLBACK, when given, is called with the reply (an alist with `ok',
and `error' when it failed).  When PROTO is not connected, it is
called at once with the error code \"disconnected\".  Return the
request's id, or nil when it could not be sent."
  (let ((id (stanza-proto-next-id proto)))
    (cl-incf (stanza-proto-next-id proto))
    (if (and (memq (stanza-proto-status proto) '(hello ready))
             (stanza-proto-send-object
              proto `((op . ,op) (id . ,id) ,@fields)))
        (progn (when callback (puthash id callback (stanza-proto-callbacks proto)))
               id)
      (stanza-proto--call callback
                          `((id . ,id) (ok . nil)
                            (error . ((code . "disconnected")
                                      (message . "not connected to stanzad")))))
      nil)))

(defun stanza-proto--flush-ack (proto)
  "Confirm every event PROTO has handled with one `ack'.
Return the request's id, or nil when there was nothing to confirm."
  (let ((seq (stanza-proto-last-seq proto)))
    (when (and (not stanza-proto--inhibit-ack)
               (> seq (stanza-proto-acked proto))
               (eq (stanza-proto-status proto) 'ready))
      (setf (stanza-proto-acked proto) seq)
      (stanza-proto-request
       proto "ack" `((seq . ,seq))
       (lambda (reply)
         (if (eq (alist-get 'ok reply) t)
             (setf (stanza-proto-cursor proto)
                   (max (stanza-proto-cursor proto) (or (alist-get 'cursor reply) 0)))
           (let ((error (alist-get 'error reply)))
             (unless (equal (alist-get 'code error) "disconnected")
               (stanza-log "ack %d refused: %s" seq (alist-get 'message error))))))))))

(defun stanza-proto-replayed-p (proto event)
  "Non-nil when EVENT was replayed by PROTO's daemon (not live).
Replayed events are those stored before this connection's `hello'."
  (let ((seq (or (alist-get 'seq event) 0)))
    (and (> seq 0) (<= seq (stanza-proto-replay-until proto)))))

(defun stanza-proto-caught-up-p (proto)
  "Non-nil when PROTO has handled every event the daemon replayed."
  (and (stanza-proto-live-p proto)
       (>= (stanza-proto-last-seq proto) (stanza-proto-replay-until proto))
       (null (stanza-proto-queue-head proto))))

(provide 'stanza-proto)
;;; stanza-proto.el ends here
