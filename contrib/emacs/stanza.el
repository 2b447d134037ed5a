;;; stanza.el --- XMPP chat in Emacs through the stanzad daemon  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1"))
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; stanzad keeps XMPP sessions alive and stores every event; this is
;; its Emacs front end.  Close Emacs, open it again, and everything
;; that happened meanwhile is there: Emacs connects to the daemon's
;; socket as one stable client name, and the daemon replays exactly
;; what this name has not confirmed yet.
;;
;; M-x stanza shows the roster: accounts and their state, contacts by
;; group with their presence and unread counts, rooms.  RET opens a
;; conversation.  A conversation buffer has its history above a prompt;
;; RET sends, M-p and M-n walk the input history, C-c ' composes a
;; longer message, /me /join /part /topic /nick /query work as in
;; other chat clients.  Sent messages show their delivery state
;; (pending, accepted, acked by the server, delivered), updated in
;; place.  Moving to the top loads older messages from the archive.
;; Unread conversations show in the mode line (through tracking.el
;; when it is installed); live direct messages and mentions make a
;; desktop notification.
;;
;; The files, each requiring only those listed before it:
;; stanza-proto.el, the transport (the protocol is
;; docs/json-protocol.md in stanzad's source); stanza-core.el, the
;; state and helpers the others share; stanza-activity.el, unread
;; conversations and notifications; stanza-message.el, how a message
;; is shown in a conversation; stanza-history.el, older messages from
;; the archive; stanza-chat.el, conversation buffers; stanza-rooms.el,
;; rooms; stanza-roster.el, contacts and the roster buffer; and this
;; file: the connection, the events, sending, and `M-x stanza'.
;; stanza-omemo.el has the OMEMO commands, autoloaded from here.  See
;; README.md beside this file for installation and the key bindings.

;;; Code:

(require 'cl-lib)
(require 'seq)
(eval-and-compile
  ;; Beside this file even when its directory is not in `load-path'
  ;; (emacs -Q --batch -l .../stanza.el).
  (let ((load-path (let ((file (macroexp-file-name)))
                     (if file (cons (file-name-directory file) load-path) load-path))))
    (require 'stanza-proto)
    (require 'stanza-core)
    (require 'stanza-activity)
    (require 'stanza-message)
    (require 'stanza-history)
    (require 'stanza-chat)
    (require 'stanza-rooms)
    (require 'stanza-roster)))

;;;; Options

(defcustom stanza-event-functions nil
  "Functions called with each event from the daemon (an alist) and a flag.
The flag is non-nil when the event was replayed (it happened while
this Emacs was not connected).  Run after stanza.el has handled it."
  :type 'hook
  :group 'stanza)

;;;; Connection

;;;###autoload
(defun stanza-connect ()
  "Connect to stanzad, unless already connected.
The socket is `stanza-socket' and the client name `stanza-client-name'."
  (interactive)
  (stanza--install-hooks)
  (cond
   ((null stanza-connection)
    (setq stanza-connection
          (stanza-proto-open :handler #'stanza--on-event
                             :hello-function #'stanza--on-hello
                             :status-function #'stanza--on-status)))
   ((not (process-live-p (stanza-proto-process stanza-connection)))
    (stanza-proto-reconnect-now stanza-connection)))
  stanza-connection)

(defun stanza-disconnect ()
  "Close the connection to stanzad; the daemon stays online.
Everything shown so far is confirmed to the daemon first, so the next
connection under the same client name replays only what came later."
  (interactive)
  (when stanza-connection
    (stanza-proto-close stanza-connection 1.0))
  (stanza-roster--schedule))

(defun stanza-quit ()
  "Disconnect from stanzad and kill every stanza buffer.
What this Emacs knew is forgotten, as when Emacs exits: the next
\\[stanza] starts from what the daemon replays."
  (interactive)
  (stanza-disconnect)
  (dolist (buffer (buffer-list))
    (when (with-current-buffer buffer
            (derived-mode-p 'stanza-chat-mode 'stanza-roster-mode 'stanza-compose-mode))
      (kill-buffer buffer)))
  (setq stanza-connection nil
        stanza--accounts nil
        stanza--joining nil
        stanza--requests nil
        stanza--invites nil
        stanza--outbox nil
        stanza--activity nil)
  (dolist (table (list stanza--roster stanza--presence stanza--rooms
                       stanza--buffers stanza--msg-buffers))
    (clrhash table))
  (stanza--activity-update))

(defun stanza--on-status (_proto status)
  "Show the new connection STATUS."
  (when (eq status 'closed)
    (dolist (entry stanza--outbox) (setf (stanza--out-in-flight entry) nil)))
  (stanza-roster--schedule)
  (force-mode-line-update t))

(defun stanza--on-hello (_proto reply)
  "Take the accounts from the hello REPLY and fetch rosters and rooms."
  (seq-doseq (info (alist-get 'accounts reply))
    (stanza--update-account info))
  (dolist (account stanza--accounts)
    (stanza--fetch (car account)))
  (stanza--outbox-flush)
  (message "Stanza: connected to %s" (or (alist-get 'daemon reply) "stanzad"))
  (stanza-roster--schedule))

(defun stanza--update-account (info)
  "Record the account INFO (from `hello' or `accounts')."
  (let ((name (alist-get 'account info)))
    (stanza--account-put name :jid (alist-get 'jid info))
    (stanza--account-put name :state (alist-get 'state info))
    (stanza--account-put name :reason (alist-get 'reason info))
    (stanza--account-put name :bound-jid (alist-get 'bound_jid info))))

(defun stanza--fetch (account)
  "Ask the daemon for the roster, the rooms and the presences of ACCOUNT."
  (stanza--request "roster" `((account . ,account))
                   (lambda (reply)
                     (when (eq (alist-get 'ok reply) t)
                       (stanza--set-roster account (alist-get 'items reply) t))))
  (stanza--request "rooms" `((account . ,account))
                   (lambda (reply)
                     (when (eq (alist-get 'ok reply) t)
                       (seq-doseq (room (alist-get 'rooms reply))
                         (stanza--set-room account room))
                       (stanza-roster--schedule))))
  ;; Who is online now, so a restarted Emacs does not wait for presence changes.
  (stanza--request "presences" `((account . ,account))
                   (lambda (reply)
                     (when (eq (alist-get 'ok reply) t)
                       (seq-doseq (presence (alist-get 'presences reply))
                         (stanza--on-presence
                          (cons (cons 'account account) presence)))))))

(defun stanza--install-hooks ()
  "Install the global hooks of stanza.el."
  (add-hook 'window-buffer-change-functions #'stanza--on-window-change)
  (add-hook 'window-selection-change-functions #'stanza--on-window-change)
  (add-hook 'kill-emacs-hook #'stanza--on-kill-emacs)
  (unless (stanza--use-tracking-p)
    (unless (memq 'stanza-activity-mode-line-string global-mode-string)
      (setq global-mode-string
            (append (or global-mode-string '("")) '(stanza-activity-mode-line-string))))))

(defun stanza--on-kill-emacs ()
  "Confirm what was shown before Emacs exits."
  (when (stanza-connected-p)
    (stanza-proto-close stanza-connection 0.5)))

;;;; Events

(defun stanza--on-event (proto event)
  "Handle EVENT from PROTO's daemon."
  (let ((replayed (stanza-proto-replayed-p proto event)))
    (pcase (alist-get 'event event)
      ("message" (stanza--on-message event replayed))
      ("message-state" (stanza--on-message-state event))
      ("presence" (stanza--on-presence event))
      ("roster" (stanza--on-roster event))
      ("subscription" (stanza--on-subscription event replayed))
      ("account-state" (stanza--on-account-state event))
      ("chat-state" (stanza--on-chat-state event))
      ("room" (stanza--on-room event))
      ("occupant" (stanza--on-occupant event))
      ("subject" (stanza--on-subject event))
      ("invite" (stanza--on-invite event replayed))
      (_ nil))
    (run-hook-with-args 'stanza-event-functions event replayed)))

(defun stanza--conversation (event)
  "The conversation of a message EVENT: (PEER . KIND).
KIND is `room' for groupchat, `private' for a message to or from a
room occupant (PEER is then room@service/nick), else `chat'."
  (let* ((account (alist-get 'account event))
         (other (if (alist-get 'outgoing event) (alist-get 'to event) (alist-get 'from event))))
    (cond ((equal (alist-get 'type event) "groupchat") (cons (stanza--bare other) 'room))
          ((and (stanza--resource other) (stanza--room account (stanza--bare other)))
           (cons other 'private))
          (t (cons (stanza--bare other) 'chat)))))

(defun stanza--on-message (event replayed)
  "Show the message EVENT; REPLAYED when it came while Emacs was away."
  (let* ((account (alist-get 'account event))
         (conv (stanza--conversation event))
         (peer (car conv)) (kind (cdr conv))
         (buffer (stanza-chat--get-buffer account peer kind t))
         (msg (stanza--message-plist event kind peer))
         (replaces (stanza--nonempty (alist-get 'replaces event))))
    (with-current-buffer buffer
      (when (and (plist-get msg :id) (plist-get msg :own))
        (puthash (stanza--key account (plist-get msg :id)) buffer stanza--msg-buffers))
      (cond
       ((and replaces (stanza-chat--correct-in-place replaces msg)))
       ((and (plist-get msg :id) (gethash (plist-get msg :id) stanza-chat--ids)))
       (t
        (stanza-chat--insert-message msg)
        (unless (or (plist-get msg :own) (plist-get msg :history))
          (stanza-chat--note-incoming msg)
          (unless replayed (stanza--maybe-notify account msg buffer))))))))

(defun stanza--on-message-state (event)
  "Update an outgoing message from the message-state EVENT."
  (let* ((account (alist-get 'account event))
         (buffer (gethash (stanza--key account (alist-get 'msg_id event)) stanza--msg-buffers)))
    (when (buffer-live-p buffer)
      (with-current-buffer buffer
        (stanza-chat--set-state (alist-get 'msg_id event) (alist-get 'state event)
                                (alist-get 'error event))))))

(defun stanza--on-account-state (event)
  "Record the account-state EVENT."
  (let ((name (alist-get 'account event)))
    (stanza--account-put name :state (alist-get 'state event))
    (stanza--account-put name :reason (alist-get 'reason event))
    (stanza--account-put name :bound-jid (alist-get 'jid event))
    (unless (equal (alist-get 'state event) "online")
      ;; Presences end with the session.
      (maphash (lambda (key _value)
                 (when (string-prefix-p (concat name "\0") key)
                   (remhash key stanza--presence)))
               stanza--presence))
    (stanza-roster--schedule)))

;;;; Sending

(defun stanza--client-id ()
  "A new client_id for a message: unique, and the same on every retry."
  (format "emacs-%s-%04x%04x" (format-time-string "%s%3N") (random 65536) (random 65536)))

(defun stanza-send-message (account to body &optional type replace)
  "Send BODY to TO on ACCOUNT; TYPE is chat, groupchat or normal.
REPLACE is the msg_id of an earlier message that BODY corrects.
The message is shown at once as pending; it is sent when the daemon
is connected, and again with the same client_id after a lost reply.
Return its client_id."
  (let* ((id (stanza--client-id))
         (entry (stanza--out-create :account account :to to :body body :type type
                                    :replace replace :client-id id)))
    (setq stanza--outbox (append stanza--outbox (list entry)))
    (let* ((room (stanza--room account to))
           (kind (cond ((or (equal type "groupchat") (and room (not type))) 'room)
                       ((and (stanza--resource to) (stanza--room account (stanza--bare to)))
                        'private)
                       (t 'chat)))
           (peer (if (eq kind 'private) to (stanza--bare to)))
           (buffer (stanza-chat--get-buffer account peer kind t)))
      (puthash (stanza--key account id) buffer stanza--msg-buffers)
      (with-current-buffer buffer
        (let ((msg (list :id id :original-id id :time (float-time)
                         :sender (stanza--own-jid account)
                         :nick (if (eq kind 'room) (stanza--room-nick account peer)
                                 (stanza--local (stanza--own-jid account)))
                         :own t :body body :state "pending" :kind kind)))
          (unless (and replace (stanza-chat--correct-in-place replace msg))
            (stanza-chat--insert-message msg)))))
    (stanza--outbox-send entry)
    id))

(defun stanza--outbox-send (entry)
  "Hand the outbox ENTRY to the daemon, when connected."
  (when (and (stanza-connected-p) (not (stanza--out-in-flight entry)))
    (setf (stanza--out-in-flight entry) t)
    (stanza-proto-request
     stanza-connection "send"
     `((account . ,(stanza--out-account entry)) (to . ,(stanza--out-to entry))
       (body . ,(stanza--out-body entry)) (client_id . ,(stanza--out-client-id entry))
       ,@(and (stanza--out-type entry) `((type . ,(stanza--out-type entry))))
       ,@(and (stanza--out-replace entry) `((replace . ,(stanza--out-replace entry)))))
     (lambda (reply)
       (let ((error (alist-get 'error reply)))
         (cond
          ((eq (alist-get 'ok reply) t)
           (setq stanza--outbox (delq entry stanza--outbox))
           (stanza--set-message-state (stanza--out-account entry)
                                      (stanza--out-client-id entry) "accepted" nil))
          ((equal (alist-get 'code error) "disconnected")
           (setf (stanza--out-in-flight entry) nil))
          (t
           (setq stanza--outbox (delq entry stanza--outbox))
           (stanza--set-message-state (stanza--out-account entry)
                                      (stanza--out-client-id entry) "failed"
                                      (or (alist-get 'message error) (alist-get 'code error))))))))))

(defun stanza--outbox-flush ()
  "Send what waits in the outbox."
  (dolist (entry stanza--outbox)
    (stanza--outbox-send entry)))

(defun stanza--set-message-state (account msg-id state error)
  "Show STATE (and ERROR) for the message MSG-ID of ACCOUNT."
  (let ((buffer (gethash (stanza--key account msg-id) stanza--msg-buffers)))
    (when (buffer-live-p buffer)
      (with-current-buffer buffer
        (stanza-chat--set-state msg-id state error)))))

;;;; Entry point

;;;###autoload
(defun stanza ()
  "Connect to stanzad (when not connected) and show the roster.
The socket is `stanza-socket'; this Emacs is the client
`stanza-client-name'.  In the roster, RET opens a conversation."
  (interactive)
  (stanza-connect)
  (let ((buffer (get-buffer-create stanza-roster-buffer-name)))
    (with-current-buffer buffer
      (unless (derived-mode-p 'stanza-roster-mode)
        (stanza-roster-mode)))
    (stanza-roster--render)
    (pop-to-buffer-same-window buffer)
    buffer))

;;;; OMEMO (stanza-omemo.el)

(autoload 'stanza-omemo-devices "stanza-omemo" "List the OMEMO devices and fingerprints." t)
(autoload 'stanza-omemo-trust "stanza-omemo" "Trust an OMEMO device." t)
(autoload 'stanza-omemo-distrust "stanza-omemo" "Distrust an OMEMO device." t)
(autoload 'stanza-encryption "stanza-omemo" "Show or set OMEMO for a conversation." t)

(provide 'stanza)
;;; stanza.el ends here
