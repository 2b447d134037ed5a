;;; stanza-core.el --- State and helpers of stanza.el  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; What the other files of stanza.el build on: the customization
;; groups they share, what this Emacs knows (accounts, rosters,
;; presences, rooms, subscription requests, invitations, conversation
;; buffers), the buffer-local state of a conversation buffer, and
;; small helpers: JIDs, accounts, requests to the daemon and their
;; errors.  It requires no file of stanza.el but stanza-proto.el.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'parse-time)
(require 'stanza-proto)

;;;; Customization groups

(defgroup stanza-chat nil
  "Conversation buffers of stanza.el."
  :group 'stanza
  :prefix "stanza-")

(defgroup stanza-faces nil
  "Faces of stanza.el."
  :group 'stanza
  :group 'faces)

;;;; State

(defvar stanza-connection nil
  "The `stanza-proto' connection to the daemon, or nil.")

(defvar stanza--accounts nil
  "The daemon's accounts, in its order: a list of (NAME . PLIST).
The plist has :jid, :state, :reason and :bound-jid.")

(defvar stanza--roster (make-hash-table :test 'equal)
  "Account name to a hash table of bare JID to roster item (an alist).")

(defvar stanza--presence (make-hash-table :test 'equal)
  "Key of account and bare JID to an alist of resource to presence plist.")

(defvar stanza--rooms (make-hash-table :test 'equal)
  "The rooms: key of account and room JID to a plist.
The plist has :state, :nick, :subject, :reason and :occupants, a hash
table of nick to occupant alist.")

(defvar stanza--requests nil
  "Subscription requests not answered yet: a list of (ACCOUNT . JID).")

(defvar stanza--invites nil
  "Room invitations not acted upon: a list of plists.")

(defvar stanza--buffers (make-hash-table :test 'equal)
  "Key of account and peer to its conversation buffer.")

(defvar stanza--msg-buffers (make-hash-table :test 'equal)
  "Key of account and msg_id of an outgoing message to its buffer.")

(defvar stanza--joining nil
  "Rooms this Emacs asked to join and whose answer has not come yet.
A list of (ACCOUNT . ROOM): their buffers are made for the room's
events, so that the notices of the join show.")

(defvar stanza--outbox nil
  "Messages not yet accepted by the daemon, oldest first.")

(cl-defstruct (stanza--out (:constructor stanza--out-create) (:copier nil))
  "A message on its way to the daemon."
  account to body type replace client-id in-flight)

;; Buffer-local state of conversation buffers.
(defvar-local stanza-chat-account nil "The account of this conversation.")
(defvar-local stanza-chat-peer nil "The contact, room, or occupant of this conversation.")
(defvar-local stanza-chat-kind nil "The kind of conversation: `chat', `room' or `private'.")
(defvar-local stanza-chat--prompt-marker nil "Where the prompt starts.")
(defvar-local stanza-chat--input-marker nil "Where the input starts.")
(defvar-local stanza-chat--ids nil "The msg_ids shown, a hash table.")
(defvar-local stanza-chat--first-time nil "The time of the oldest message.")
(defvar-local stanza-chat--last-time nil "The time of the newest message.")
(defvar-local stanza-chat-unread 0 "The number of unread messages.")
(defvar-local stanza-chat--mentioned nil "Non-nil when an unread message mentions you.")
(defvar-local stanza-chat--history-before nil "The archive id before which to load.")
(defvar-local stanza-chat--history-complete nil "Non-nil when the archive has no more.")
(defvar-local stanza-chat--history-loading nil "Non-nil while older messages load.")
(defvar-local stanza-chat--input-ring nil "Inputs sent, for \\[stanza-chat-previous-input].")
(defvar-local stanza-chat--input-index nil "Where in the input ring the input history commands are.")
(defvar-local stanza-chat--saved-input nil "The input before the input history commands replaced it.")
(defvar-local stanza-chat--last-incoming nil "The msg_id of the newest incoming message.")
(defvar-local stanza-chat--displayed nil "The msg_id last reported as displayed.")
(defvar-local stanza-chat--last-incoming-time nil
  "The time of the newest incoming message, as a float.")
(defvar-local stanza-chat--peer-state nil "The contact's chat state.")
(defvar-local stanza-chat--my-state nil "The chat state last sent.")
(defvar-local stanza-chat--state-timer nil "Timer that sends `paused'.")
(defvar-local stanza-chat--new-overlay nil "Overlay of the line above the first unread message.")
(defvar-local stanza-chat--peer-name nil "The name shown for the contact.")
(defvar-local stanza-chat--read-timer nil "Timer of the next read marker check.")

;;;; Helpers

(defun stanza--key (account jid)
  "The hash key of ACCOUNT and JID."
  (concat account "\0" jid))

(defun stanza--bare (jid)
  "JID without its resource."
  (if (and jid (string-match "\\`\\([^/]*\\)/" jid)) (match-string 1 jid) jid))

(defun stanza--resource (jid)
  "The resource of JID, or nil."
  (and jid (string-match "/\\(.*\\)\\'" jid) (match-string 1 jid)))

(defun stanza--local (jid)
  "The local part of JID, or its domain when it has none."
  (let ((bare (stanza--bare jid)))
    (if (string-match "\\`\\([^@]*\\)@" bare) (match-string 1 bare) bare)))

(defun stanza--nonempty (string)
  "STRING when it is a non-empty string, else nil."
  (and (stringp string) (not (string-empty-p string)) string))

(defun stanza--account (name)
  "The plist of the account NAME."
  (cdr (assoc name stanza--accounts)))

(defun stanza--account-put (name prop value)
  "Set PROP of the account NAME to VALUE."
  (let ((cell (assoc name stanza--accounts)))
    (if cell
        (setcdr cell (plist-put (cdr cell) prop value))
      (setq stanza--accounts (append stanza--accounts
                                     (list (cons name (list prop value))))))))

(defun stanza--own-jid (account)
  "The bare JID of ACCOUNT."
  (or (plist-get (stanza--account account) :jid) ""))

(defun stanza--room (account room)
  "The state of ROOM on ACCOUNT (a plist), or nil."
  (gethash (stanza--key account room) stanza--rooms))

(defun stanza--room-nick (account room)
  "Our nick in ROOM on ACCOUNT."
  (or (stanza--nonempty (plist-get (stanza--room account room) :nick))
      (stanza--local (stanza--own-jid account))))

(defun stanza--roster-item (account jid)
  "The roster item of JID on ACCOUNT, or nil."
  (let ((table (gethash account stanza--roster)))
    (and table (gethash (stanza--bare jid) table))))

(defun stanza--display-name (account jid)
  "How to call JID on ACCOUNT: its roster name, else its nick, else JID."
  (let ((item (stanza--roster-item account jid)))
    (or (stanza--nonempty (alist-get 'name item))
        (stanza--nonempty (alist-get 'nick item))
        (stanza--bare jid))))

(defun stanza--presence-of (account jid)
  "The presence of JID on ACCOUNT: a string like \"online\" or \"away\".
Also return the status text: the value is (SHOW . STATUS).  SHOW is
\"unknown\" when no presence of JID has come since stanza connected:
the daemon replays only what this client has not seen."
  (let ((best nil))
    (dolist (entry (gethash (stanza--key account (stanza--bare jid)) stanza--presence))
      (let ((p (cdr entry)))
        (when (and (plist-get p :available)
                   (or (null best) (> (plist-get p :priority) (plist-get best :priority))))
          (setq best p))))
    (cond (best (cons (or (stanza--nonempty (plist-get best :show)) "online")
                      (or (plist-get best :status) "")))
          ((eq (gethash (stanza--key account (stanza--bare jid)) stanza--presence 'absent)
               'absent)
           (cons "unknown" ""))
          (t (cons "offline" "")))))

(defun stanza--parse-time (stamp)
  "STAMP (RFC 3339) as a float time; the current time when it is missing."
  (or (and (stanza--nonempty stamp)
           (ignore-errors (float-time (parse-iso8601-time-string stamp))))
      (float-time)))

(defun stanza--read-account ()
  "The account of the current buffer or roster line, else ask for one."
  (or (and (derived-mode-p 'stanza-chat-mode) stanza-chat-account)
      (plist-get (get-text-property (point) 'stanza-item) :account)
      (let ((names (mapcar #'car stanza--accounts)))
        (cond ((null names) (user-error "No accounts: is stanza connected?"))
              ((null (cdr names)) (car names))
              (t (completing-read "Account: " names nil t))))))

(defun stanza-connected-p ()
  "Non-nil when stanza is connected to the daemon and has said hello."
  (and stanza-connection (stanza-proto-live-p stanza-connection)))

(defun stanza--request (op fields &optional callback)
  "Send the request OP with FIELDS; call CALLBACK with the reply.
Errors without a callback are shown in the echo area."
  (unless stanza-connection (user-error "Not connected: M-x stanza"))
  (stanza-proto-request
   stanza-connection op fields
   (or callback
       (lambda (reply)
         (unless (eq (alist-get 'ok reply) t)
           (stanza--complain op reply))))))

(defun stanza--log-failure (reply)
  "Log REPLY when it is an error (for requests nobody waits for)."
  (unless (eq (alist-get 'ok reply) t)
    (let ((error (alist-get 'error reply)))
      (unless (member (alist-get 'code error) '("disconnected" "not-online"))
        (stanza-log "request %s failed: %s: %s" (alist-get 'id reply)
                    (alist-get 'code error) (alist-get 'message error))))))

(defun stanza--complain (what reply)
  "Show the error in REPLY to the request WHAT."
  (let ((error (alist-get 'error reply)))
    (message "Stanza: %s: %s" what
             (or (stanza--nonempty (alist-get 'message error))
                 (alist-get 'code error)))))

(provide 'stanza-core)
;;; stanza-core.el ends here
