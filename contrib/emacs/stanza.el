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
;; The transport is in stanza-proto.el; the protocol is
;; docs/json-protocol.md in stanzad's source.  See README.md beside
;; this file for installation and the key bindings.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'ring)
(require 'seq)
(require 'text-property-search)
(require 'parse-time)
(eval-and-compile
  ;; Beside this file even when its directory is not in `load-path'
  ;; (emacs -Q --batch -f batch-byte-compile stanza*.el).
  (require 'stanza-proto
           (let ((file (macroexp-file-name)))
             (and file (expand-file-name "stanza-proto" (file-name-directory file))))))

(declare-function tracking-add-buffer "tracking" (buffer &optional faces))
(declare-function tracking-remove-buffer "tracking" (buffer))
(declare-function notifications-notify "notifications" (&rest params))

;;;; Options

(defgroup stanza-chat nil
  "Conversation buffers of stanza.el."
  :group 'stanza
  :prefix "stanza-")

(defcustom stanza-prompt "> "
  "The prompt before the input in conversation buffers."
  :type 'string
  :group 'stanza-chat)

(defcustom stanza-timestamp-format "[%H:%M] "
  "How the time of each message is shown (see `format-time-string')."
  :type 'string
  :group 'stanza-chat)

(defcustom stanza-day-separator-format "--- %A %-d %B %Y ---"
  "The line between the messages of two days (see `format-time-string')."
  :type 'string
  :group 'stanza-chat)

(defcustom stanza-nick-format "<%s> "
  "How the sender's name is shown before a message (a `format' string)."
  :type 'string
  :group 'stanza-chat)

(defcustom stanza-nick-colors
  '("#c0392b" "#2980b9" "#27ae60" "#8e44ad" "#d35400" "#16a085"
    "#b7950b" "#2c3e50" "#e84393" "#6d4c41" "#00838f" "#7cb342")
  "Colors given to the names of other people, chosen by a hash of the name.
Nil shows every name in the face `stanza-nick'."
  :type '(repeat color)
  :group 'stanza-chat)

(defcustom stanza-state-indicators
  '(("pending" . "…") ("accepted" . "…") ("sent" . "·") ("acked" . "✓")
    ("delivered" . "✓✓") ("displayed" . "✓✓ seen") ("failed" . "✗"))
  "What follows an outgoing message in each of its delivery states.
\"pending\" is a message not yet accepted by the daemon; the others are
the `message-state' states of the protocol: \"accepted\" (stored),
\"sent\" (written to the server), \"acked\" (the server confirmed it),
\"delivered\" (a receipt came, or the room echoed it), \"displayed\" (the
contact has seen it) and \"failed\" (the error follows)."
  :type '(alist :key-type string :value-type string)
  :group 'stanza-chat)

(defcustom stanza-encrypted-indicator "🔒 "
  "Shown before the text of each message that came end-to-end encrypted (OMEMO).
The daemon decrypted it; \"\" shows nothing."
  :type 'string
  :group 'stanza-chat)

(defcustom stanza-history-page-size 50
  "How many older messages one request to the archive asks for (1 to 200)."
  :type 'integer
  :group 'stanza-chat)

(defcustom stanza-history-on-open t
  "When non-nil, opening an empty conversation loads its latest messages."
  :type 'boolean
  :group 'stanza-chat)

(defcustom stanza-load-older-at-top t
  "When non-nil, moving to the top of a conversation loads older messages."
  :type 'boolean
  :group 'stanza-chat)

(defcustom stanza-show-occupant-changes t
  "When non-nil, room buffers show who joins, leaves and changes nick."
  :type 'boolean
  :group 'stanza-chat)

(defcustom stanza-send-chat-states t
  "When non-nil, tell contacts when you are typing (XEP-0085).
Only in one-to-one conversations."
  :type 'boolean
  :group 'stanza-chat)

(defcustom stanza-send-read-markers t
  "When non-nil, tell the daemon what you have read (the `displayed' op).
A conversation is read up to its last message once that message has
been in view.  Whether a marker leaves the machine is the daemon's
choice (`chat_markers' in its config)."
  :type 'boolean
  :group 'stanza-chat)

(defcustom stanza-input-ring-size 100
  "How many sent inputs each conversation remembers.
They come back with \\<stanza-chat-mode-map>\\[stanza-chat-previous-input] and \\[stanza-chat-next-input]."
  :type 'integer
  :group 'stanza-chat)

(defcustom stanza-buffer-name-format "*stanza: %s*"
  "The name of a conversation buffer; %s is the contact or room."
  :type 'string
  :group 'stanza-chat)

(defcustom stanza-chat-mode-hook nil
  "Hook run when a conversation buffer is set up."
  :type 'hook
  :group 'stanza-chat)

(defgroup stanza-activity nil
  "Unread conversations and notifications in stanza.el."
  :group 'stanza
  :prefix "stanza-")

(defcustom stanza-use-tracking 'auto
  "Whether unread conversations are shown through tracking.el.
`auto' uses it when it can be loaded, t requires it, nil never uses it
and shows stanza's own indicator in the mode line instead."
  :type '(choice (const :tag "When installed" auto)
                 (const :tag "Always" t)
                 (const :tag "Never" nil))
  :group 'stanza-activity)

(defcustom stanza-notify-function #'stanza-notify-default
  "Function called to notify the user of a live message.
It gets one plist with :title, :body, :account, :from, :buffer and
:mention (non-nil for a mention in a room).  Only live direct
messages and mentions notify, never replayed or archived ones."
  :type 'function
  :group 'stanza-activity)

(defcustom stanza-notify-when-visible nil
  "When non-nil, notify also for messages of the selected conversation."
  :type 'boolean
  :group 'stanza-activity)

(defcustom stanza-mention-words nil
  "Words that count as a mention in rooms, besides your nick there."
  :type '(repeat string)
  :group 'stanza-activity)

(defcustom stanza-event-functions nil
  "Functions called with each event from the daemon (an alist) and a flag.
The flag is non-nil when the event was replayed (it happened while
this Emacs was not connected).  Run after stanza.el has handled it."
  :type 'hook
  :group 'stanza)

(defgroup stanza-roster nil
  "The roster buffer of stanza.el."
  :group 'stanza
  :prefix "stanza-roster-")

(defcustom stanza-roster-show-offline t
  "When non-nil, the roster lists contacts that are offline."
  :type 'boolean
  :group 'stanza-roster)

(defcustom stanza-roster-presence-symbols
  '(("online" . "●") ("chat" . "●") ("away" . "◐") ("xa" . "◌")
    ("dnd" . "⊘") ("offline" . "○") ("unknown" . "·"))
  "The symbol before a contact for each presence."
  :type '(alist :key-type string :value-type string)
  :group 'stanza-roster)

(defcustom stanza-roster-mode-hook nil
  "Hook run when the roster buffer is set up."
  :type 'hook
  :group 'stanza-roster)

;;;; Faces

(defgroup stanza-faces nil
  "Faces of stanza.el."
  :group 'stanza
  :group 'faces)

(defface stanza-timestamp '((t :inherit shadow))
  "Face of the time before each message."
  :group 'stanza-faces)

(defface stanza-day-separator '((t :inherit shadow :weight bold))
  "Face of the line between two days."
  :group 'stanza-faces)

(defface stanza-nick '((t :weight bold))
  "Face of other people's names."
  :group 'stanza-faces)

(defface stanza-own-nick '((t :inherit font-lock-keyword-face :weight bold))
  "Face of your own name."
  :group 'stanza-faces)

(defface stanza-action '((t :slant italic))
  "Face of /me actions."
  :group 'stanza-faces)

(defface stanza-mention '((t :inherit highlight))
  "Face of messages that mention you."
  :group 'stanza-faces)

(defface stanza-notice '((t :inherit shadow))
  "Face of room notices: joins, parts, subject changes."
  :group 'stanza-faces)

(defface stanza-state '((t :inherit shadow))
  "Face of the delivery state after an outgoing message."
  :group 'stanza-faces)

(defface stanza-state-failed '((t :inherit error))
  "Face of the state of a message that could not be delivered."
  :group 'stanza-faces)

(defface stanza-prompt '((t :inherit minibuffer-prompt))
  "Face of the prompt."
  :group 'stanza-faces)

(defface stanza-read-marker '((t :inherit font-lock-warning-face))
  "Face of the line above the first unread message."
  :group 'stanza-faces)

(defface stanza-activity '((t :inherit mode-line-emphasis))
  "Face of a conversation with unread messages in the mode line."
  :group 'stanza-faces)

(defface stanza-activity-mention '((t :inherit error :weight bold))
  "Face of a conversation that mentions you in the mode line."
  :group 'stanza-faces)

(defface stanza-encrypted '((t :inherit success))
  "Face of the lock before an encrypted message."
  :group 'stanza-faces)

(defface stanza-encryption-warning '((t :inherit warning :weight bold))
  "Face of the warning about the device of an encrypted message (changed, undecided)."
  :group 'stanza-faces)

(defface stanza-roster-account '((t :inherit font-lock-function-name-face :weight bold))
  "Face of an account line in the roster."
  :group 'stanza-faces)

(defface stanza-roster-group '((t :inherit font-lock-type-face))
  "Face of a group heading in the roster."
  :group 'stanza-faces)

(defface stanza-roster-online '((t :inherit success))
  "Face of an available contact."
  :group 'stanza-faces)

(defface stanza-roster-away '((t :inherit warning))
  "Face of a contact who is away, extended away or busy."
  :group 'stanza-faces)

(defface stanza-roster-offline '((t :inherit shadow))
  "Face of an offline contact."
  :group 'stanza-faces)

(defface stanza-roster-unread '((t :inherit bold))
  "Face of an unread count in the roster."
  :group 'stanza-faces)

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

(defvar stanza--activity nil
  "Conversation buffers with unread messages, most recent first.")

(defvar stanza-activity-mode-line-string ""
  "The unread conversations, as shown in the mode line.")
(put 'stanza-activity-mode-line-string 'risky-local-variable t)

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

(cl-defstruct (stanza--out (:constructor stanza--out-create) (:copier nil))
  "A message on its way to the daemon."
  account to body type replace client-id in-flight)

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

(defun stanza--read-account ()
  "The account of the current buffer or roster line, else ask for one."
  (or (and (derived-mode-p 'stanza-chat-mode) stanza-chat-account)
      (plist-get (get-text-property (point) 'stanza-item) :account)
      (let ((names (mapcar #'car stanza--accounts)))
        (cond ((null names) (user-error "No accounts: is stanza connected?"))
              ((null (cdr names)) (car names))
              (t (completing-read "Account: " names nil t))))))

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

(defun stanza-connected-p ()
  "Non-nil when stanza is connected to the daemon and has said hello."
  (and stanza-connection (stanza-proto-live-p stanza-connection)))

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

(defun stanza--parse-time (stamp)
  "STAMP (RFC 3339) as a float time; the current time when it is missing."
  (or (and (stanza--nonempty stamp)
           (ignore-errors (float-time (parse-iso8601-time-string stamp))))
      (float-time)))

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

(defun stanza--room-nick (account room)
  "Our nick in ROOM on ACCOUNT."
  (or (stanza--nonempty (plist-get (stanza--room account room) :nick))
      (stanza--local (stanza--own-jid account))))

(defun stanza--mention-p (body words)
  "Non-nil when BODY mentions one of WORDS (case does not matter)."
  (let ((case-fold-search t))
    (cl-some (lambda (word)
               (and (stanza--nonempty word)
                    (string-match-p (concat "\\(?:\\`\\|\\W\\)" (regexp-quote word)
                                            "\\(?:\\W\\|\\'\\)")
                                    body)))
             words)))

(defun stanza--message-plist (event kind peer)
  "The message plist of a message EVENT in a conversation of KIND with PEER."
  (let* ((account (alist-get 'account event))
         (outgoing (alist-get 'outgoing event))
         (from (alist-get 'from event))
         (body (or (alist-get 'body event) ""))
         (history (alist-get 'history event))
         (msg-id (stanza--nonempty (alist-get 'msg_id event)))
         (nick (cond ((eq kind 'room)
                      (if outgoing (stanza--room-nick account peer)
                        (or (stanza--resource from) from)))
                     (outgoing (stanza--local (stanza--own-jid account)))
                     ((eq kind 'private) (or (stanza--resource from) from))
                     (t (stanza--display-name account from))))
         (mention (and (eq kind 'room) (not outgoing)
                       (stanza--mention-p body (cons (stanza--room-nick account peer)
                                                     stanza-mention-words)))))
    (list :id msg-id :original-id msg-id
          :archive-id (and (or history (not outgoing)) msg-id)
          :time (stanza--parse-time (alist-get 'stamp event))
          :sender (if outgoing (stanza--own-jid account) from)
          :nick nick :own outgoing :body body
          ;; Sent through stanzad (not a carbon of another client's): tracked.
          :state (and outgoing (not history)
                      (not (stanza--nonempty (alist-get 'carbon event)))
                      "accepted")
          :history history :mention mention :kind kind
          ;; XEP-0384: "omemo" when it came encrypted, the sending device's trust, and
          ;; why it could not be decrypted (then the body is empty).
          :encryption (stanza--nonempty (alist-get 'encryption event))
          :trust (stanza--nonempty (alist-get 'trust event))
          :decrypt-error (stanza--nonempty (alist-get 'error event)))))

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

(defun stanza--maybe-notify (account msg buffer)
  "Notify the user of the live message MSG on ACCOUNT shown in BUFFER.
Only direct messages and mentions notify."
  (when (and stanza-notify-function
             (or (memq (plist-get msg :kind) '(chat private)) (plist-get msg :mention))
             (or stanza-notify-when-visible
                 (not (eq buffer (window-buffer (selected-window))))))
    (condition-case err
        (funcall stanza-notify-function
                 (list :title (if (eq (plist-get msg :kind) 'room)
                                  (format "%s in %s" (plist-get msg :nick)
                                          (buffer-local-value 'stanza-chat-peer buffer))
                                (plist-get msg :nick))
                       :body (plist-get msg :body) :account account
                       :from (plist-get msg :sender) :buffer buffer
                       :mention (plist-get msg :mention)))
      (error (stanza-log "notification failed: %S" err)))))

(defun stanza-notify-default (info)
  "Show the notification INFO on the desktop, else in the echo area.
INFO is a plist as described in `stanza-notify-function'."
  (let ((title (plist-get info :title))
        (body (plist-get info :body)))
    (unless (and (require 'notifications nil t)
                 (condition-case nil
                     (progn (notifications-notify :title title :body body
                                                  :app-name "stanza")
                            t)
                   (error nil)))
      (message "Stanza: %s: %s" title body))))

(defun stanza--on-message-state (event)
  "Update an outgoing message from the message-state EVENT."
  (let* ((account (alist-get 'account event))
         (buffer (gethash (stanza--key account (alist-get 'msg_id event)) stanza--msg-buffers)))
    (when (buffer-live-p buffer)
      (with-current-buffer buffer
        (stanza-chat--set-state (alist-get 'msg_id event) (alist-get 'state event)
                                (alist-get 'error event))))))

(defun stanza--on-presence (event)
  "Record the presence EVENT."
  (let* ((account (alist-get 'account event))
         (from (alist-get 'from event))
         (key (stanza--key account (stanza--bare from)))
         (resource (or (stanza--resource from) ""))
         (entries (assoc-delete-all resource (gethash key stanza--presence))))
    (when (alist-get 'available event)
      (push (cons resource (list :available t :show (alist-get 'show event)
                                 :status (alist-get 'status event)
                                 :priority (or (alist-get 'priority event) 0)))
            entries))
    (puthash key entries stanza--presence)
    (let ((buffer (gethash (stanza--key account (stanza--bare from)) stanza--buffers)))
      (when (buffer-live-p buffer)
        (with-current-buffer buffer (force-mode-line-update))))
    (stanza-roster--schedule)))

(defun stanza--set-roster (account items replace)
  "Store the roster ITEMS of ACCOUNT; REPLACE drops what is not in them."
  (let ((table (or (and (not replace) (gethash account stanza--roster))
                   (make-hash-table :test 'equal))))
    (seq-doseq (item items)
      (if (equal (alist-get 'subscription item) "remove")
          (remhash (alist-get 'jid item) table)
        (puthash (alist-get 'jid item) item table)))
    (puthash account table stanza--roster))
  (maphash (lambda (key buffer)
             (when (and (string-prefix-p (concat account "\0") key) (buffer-live-p buffer))
               (with-current-buffer buffer
                 (when (eq stanza-chat-kind 'chat) (stanza-chat--refresh-name)))))
           stanza--buffers)
  (stanza-roster--schedule))

(defun stanza--on-roster (event)
  "Record the roster EVENT (the whole roster, or a push)."
  (stanza--set-roster (alist-get 'account event) (alist-get 'items event)
                      (not (alist-get 'push event))))

(defun stanza--on-subscription (event replayed)
  "Record the subscription EVENT; REPLAYED when it is not live."
  (let ((account (alist-get 'account event))
        (from (stanza--bare (alist-get 'from event)))
        (kind (alist-get 'kind event)))
    (setq stanza--requests (cl-remove (cons account from) stanza--requests :test #'equal))
    (when (equal kind "subscribe")
      (setq stanza--requests (append stanza--requests (list (cons account from))))
      (unless replayed
        (message "Stanza: %s asks to see your presence (A in the roster approves)" from)))
    (stanza-roster--schedule)))

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

(defun stanza--on-chat-state (event)
  "Show the chat-state EVENT in its conversation's header line."
  (let ((buffer (gethash (stanza--key (alist-get 'account event)
                                      (stanza--bare (alist-get 'from event)))
                         stanza--buffers)))
    (when (buffer-live-p buffer)
      (with-current-buffer buffer
        (when (eq stanza-chat-kind 'chat)
          (setq stanza-chat--peer-state (alist-get 'state event))
          (force-mode-line-update))))))

(defun stanza--set-room (account info)
  "Store the room INFO of ACCOUNT (from `rooms' or `join')."
  (let* ((jid (alist-get 'room info))
         (occupants (make-hash-table :test 'equal)))
    (seq-doseq (o (alist-get 'occupants info))
      (puthash (alist-get 'nick o) o occupants))
    (puthash (stanza--key account jid)
             (list :state (or (alist-get 'state info) "joined")
                   :nick (alist-get 'nick info) :subject (alist-get 'subject info)
                   :reason (alist-get 'reason info) :occupants occupants)
             stanza--rooms)))

(defun stanza--room-notice (account room text time)
  "Show TEXT at TIME in the buffer of ROOM on ACCOUNT, when there is one."
  (let ((buffer (gethash (stanza--key account room) stanza--buffers)))
    (when (buffer-live-p buffer)
      (with-current-buffer buffer
        (stanza-chat--insert-message (list :notice t :body text :time time))))))

(defun stanza--on-room (event)
  "Record the room EVENT: our own state in a room."
  (let* ((account (alist-get 'account event))
         (jid (alist-get 'room event))
         (state (alist-get 'state event))
         (room (stanza--room account jid))
         (time (stanza--parse-time (alist-get 'stamp event)))
         (who (stanza--nonempty (alist-get 'actor event)))
         (why (stanza--nonempty (alist-get 'reason event))))
    (if (member state '("left" "kicked" "banned" "removed" "destroyed"))
        (remhash (stanza--key account jid) stanza--rooms)
      (puthash (stanza--key account jid)
               (list :state state :nick (alist-get 'nick event)
                     :subject (plist-get room :subject) :reason (alist-get 'reason event)
                     :occupants (or (plist-get room :occupants) (make-hash-table :test 'equal)))
               stanza--rooms))
    (when (member (cons account jid) stanza--joining)
      (stanza-chat--get-buffer account jid 'room t))
    (stanza--room-notice
     account jid
     (concat (pcase state
               ("joining" "Joining…")
               ("joined" (format "You are in the room as %s" (alist-get 'nick event)))
               ("left" "You left the room")
               ("kicked" "You were kicked")
               ("banned" "You were banned")
               ("removed" "You were removed from the room")
               ("destroyed" "The room was destroyed")
               (_ (format "Room: %s" state)))
             (if who (format " by %s" who) "")
             (if why (format " (%s)" why) ""))
     time)
    (stanza-roster--schedule)))

(defun stanza--on-occupant (event)
  "Record the occupant EVENT: someone else in a room changed."
  (let* ((account (alist-get 'account event))
         (jid (alist-get 'room event))
         (room (stanza--room account jid))
         (occupants (plist-get room :occupants))
         (nick (alist-get 'nick event))
         (change (alist-get 'change event)))
    (when occupants
      (pcase change
        ((or "leave" "kick" "ban") (remhash nick occupants))
        ("nick" (remhash nick occupants)
         (puthash (alist-get 'new_nick event) event occupants))
        (_ (puthash nick event occupants))))
    (when (and stanza-show-occupant-changes (not (equal change "update")))
      (stanza--room-notice
       account jid
       (pcase change
         ("join" (format "%s joined" nick))
         ("leave" (format "%s left" nick))
         ("nick" (format "%s is now %s" nick (alist-get 'new_nick event)))
         ("kick" (format "%s was kicked" nick))
         ("ban" (format "%s was banned" nick))
         (_ (format "%s: %s" nick change)))
       (stanza--parse-time (alist-get 'stamp event))))
    (stanza-roster--schedule)))

(defun stanza--on-subject (event)
  "Record the subject EVENT of a room."
  (let* ((account (alist-get 'account event))
         (jid (alist-get 'room event))
         (room (stanza--room account jid))
         (subject (alist-get 'subject event)))
    (when room
      (puthash (stanza--key account jid) (plist-put room :subject subject) stanza--rooms))
    (stanza--room-notice account jid
                         (if (stanza--nonempty (alist-get 'nick event))
                             (format "%s set the topic: %s" (alist-get 'nick event) subject)
                           (format "Topic: %s" subject))
                         (stanza--parse-time (alist-get 'stamp event)))
    (stanza-roster--schedule)))

(defun stanza--on-invite (event replayed)
  "Record the invite EVENT; REPLAYED when it is not live."
  (let ((invite (list :account (alist-get 'account event) :room (alist-get 'room event)
                      :from (alist-get 'from event) :reason (alist-get 'reason event)
                      :password (alist-get 'password event))))
    (push invite stanza--invites)
    (unless replayed
      (message "Stanza: %s invites you to %s (j in the roster joins)"
               (plist-get invite :from) (plist-get invite :room)))
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

(defun stanza-join (account room &optional nick password)
  "Join ROOM on ACCOUNT as NICK (with PASSWORD) and show its buffer."
  (interactive
   (let ((account (stanza--read-account)))
     (list account (read-string "Room JID: ")
           (stanza--nonempty (read-string "Nick (empty: the default): ")))))
  (let ((room (stanza--bare room)))
    (push (cons account room) stanza--joining)
    (stanza--request
     "join" `((account . ,account) (room . ,room)
              ,@(and nick `((nick . ,nick))) ,@(and password `((password . ,password))))
     (lambda (reply)
       (setq stanza--joining (delete (cons account room) stanza--joining))
       (if (not (eq (alist-get 'ok reply) t))
           (stanza--complain (format "join %s" room) reply)
         (stanza--set-room account reply)
         (stanza-roster--schedule)
         (let ((buffer (stanza-chat--get-buffer account room 'room t)))
           (with-current-buffer buffer (force-mode-line-update))
           (pop-to-buffer-same-window buffer)))))))

(defun stanza-part (account room &optional reason)
  "Leave ROOM on ACCOUNT, saying REASON."
  (interactive (list (stanza--read-account)
                     (if (eq stanza-chat-kind 'room) stanza-chat-peer (read-string "Room JID: "))))
  (stanza--request "part" `((account . ,account) (room . ,room)
                            ,@(and reason `((reason . ,reason))))))

(defun stanza-set-presence (account show status)
  "Set your presence on ACCOUNT: SHOW (\"\" available, away, chat, dnd, xa), STATUS."
  (interactive (list (stanza--read-account)
                     (completing-read "Show (empty: available): " '("" "away" "chat" "dnd" "xa"))
                     (read-string "Status: ")))
  (stanza--request "presence" `((account . ,account) (show . ,show) (status . ,status))))

(defun stanza-add-contact (account jid name)
  "Add JID as NAME to the roster of ACCOUNT and ask for its presence."
  (interactive (list (stanza--read-account) (read-string "JID: ") (read-string "Name: ")))
  (stanza--request "roster-set" `((account . ,account) (jid . ,jid) (name . ,name)))
  (stanza--request "subscribe" `((account . ,account) (jid . ,jid))))

;;;; Conversation buffers

(defvar stanza-chat-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "RET") #'stanza-chat-send-input)
    (define-key map (kbd "M-RET") #'newline)
    (define-key map (kbd "S-<return>") #'newline)
    (define-key map (kbd "M-p") #'stanza-chat-previous-input)
    (define-key map (kbd "M-n") #'stanza-chat-next-input)
    (define-key map (kbd "C-c '") #'stanza-chat-compose)
    (define-key map (kbd "C-c C-o") #'stanza-chat-load-older)
    (define-key map (kbd "C-c C-e") #'stanza-chat-correct)
    (define-key map (kbd "C-c C-q") #'stanza-chat-quote)
    (define-key map (kbd "C-c C-i") #'stanza-chat-message-info)
    (define-key map (kbd "C-c C-r") #'stanza)
    (define-key map (kbd "C-c C-SPC") #'stanza-next-unread)
    (define-key map (kbd "C-c C-p") #'stanza-chat-previous-message)
    (define-key map (kbd "C-c C-n") #'stanza-chat-next-message)
    map)
  "Keymap of conversation buffers.")

(define-derived-mode stanza-chat-mode fundamental-mode "Stanza"
  "Major mode of a conversation through stanzad.
History above, the prompt below.  Type after the prompt and press
RET to send; a line that starts with / is a command (/help lists
them).  Each message carries the text properties `stanza-msg-id',
`stanza-time', `stanza-sender' and, when it is yours, `stanza-state',
so commands act on the message at point.

\\{stanza-chat-mode-map}"
  (setq-local word-wrap t)
  (setq-local scroll-conservatively 101)
  (setq-local stanza-chat--ids (make-hash-table :test 'equal))
  (setq-local stanza-chat--input-ring (make-ring stanza-input-ring-size))
  (setq-local header-line-format '(:eval (stanza-chat--header-line)))
  (setq-local mode-line-process '(:eval (stanza--mode-line-status)))
  (add-hook 'post-command-hook #'stanza-chat--post-command nil t)
  (add-hook 'window-scroll-functions #'stanza-chat--on-scroll nil t)
  (add-hook 'after-change-functions #'stanza-chat--after-change nil t)
  (add-hook 'kill-buffer-hook #'stanza-chat--on-kill nil t)
  (let ((inhibit-read-only t))
    (erase-buffer)
    (insert (propertize stanza-prompt 'face 'stanza-prompt 'read-only t
                        'rear-nonsticky t 'front-sticky t 'field 'stanza-prompt))
    (setq stanza-chat--prompt-marker (copy-marker (point-min) t))
    (setq stanza-chat--input-marker (copy-marker (point-max))))
  (setq buffer-undo-list nil)
  (set-buffer-modified-p nil))

(defun stanza--mode-line-status ()
  "The connection state, for the mode line."
  (cond ((stanza-connected-p) "")
        ((and stanza-connection (stanza-proto-wanted stanza-connection)) ":connecting")
        (t ":disconnected")))

(defun stanza-chat-buffer (account peer)
  "The conversation buffer with PEER on ACCOUNT, or nil."
  (let ((buffer (gethash (stanza--key account peer) stanza--buffers)))
    (and (buffer-live-p buffer) buffer)))

(defun stanza-chat--buffer-name (account peer kind)
  "A name for the buffer of the conversation of KIND with PEER on ACCOUNT."
  (let ((name (format stanza-buffer-name-format
                      (if (eq kind 'chat) (stanza--display-name account peer) peer))))
    (if (cdr stanza--accounts)
        (format "%s<%s>" name account)
      name)))

(defun stanza-chat--get-buffer (account peer kind &optional create)
  "The buffer of the conversation of KIND with PEER on ACCOUNT.
With CREATE, make it when there is none."
  (or (stanza-chat-buffer account peer)
      (when create
        (let ((buffer (generate-new-buffer (stanza-chat--buffer-name account peer kind))))
          (with-current-buffer buffer
            (delay-mode-hooks (stanza-chat-mode))
            (setq stanza-chat-account account
                  stanza-chat-peer peer
                  stanza-chat-kind kind
                  stanza-chat--peer-name (stanza--display-name account peer))
            (run-mode-hooks 'stanza-chat-mode-hook))
          (puthash (stanza--key account peer) buffer stanza--buffers)
          (stanza-roster--schedule)
          buffer))))

(defun stanza-chat--refresh-name ()
  "Show the contact's current name (its roster entry changed)."
  (let ((name (stanza--display-name stanza-chat-account stanza-chat-peer)))
    (unless (equal name stanza-chat--peer-name)
      (setq stanza-chat--peer-name name)
      (rename-buffer (stanza-chat--buffer-name stanza-chat-account stanza-chat-peer 'chat) t)
      (let ((pos (point-min)))
        (while (< pos stanza-chat--prompt-marker)
          (let ((msg (get-text-property pos 'stanza-message))
                (end (stanza-chat--unit-end pos)))
            (if (and msg (not (plist-get msg :own)) (not (plist-get msg :notice))
                     (not (equal (plist-get msg :nick) name)))
                (let ((new (plist-put (copy-sequence msg) :nick name)))
                  (stanza-chat--rerender (cons pos end) new)
                  (setq pos (stanza-chat--unit-end pos)))
              (setq pos end))))))))

(defun stanza-chat--on-kill ()
  "Forget this conversation buffer."
  (when (and stanza-chat-account stanza-chat-peer
             (eq (gethash (stanza--key stanza-chat-account stanza-chat-peer) stanza--buffers)
                 (current-buffer)))
    (remhash (stanza--key stanza-chat-account stanza-chat-peer) stanza--buffers))
  (when stanza-chat--state-timer (cancel-timer stanza-chat--state-timer))
  (when stanza-chat--read-timer (cancel-timer stanza-chat--read-timer))
  (let ((buffer (current-buffer)))
    (maphash (lambda (key value) (when (eq value buffer) (remhash key stanza--msg-buffers)))
             stanza--msg-buffers))
  (stanza--activity-remove (current-buffer))
  (stanza-roster--schedule))

(defun stanza-chat--header-line ()
  "The header line of a conversation."
  (pcase stanza-chat-kind
    ('room
     (let* ((room (stanza--room stanza-chat-account stanza-chat-peer))
            (occupants (plist-get room :occupants)))
       (concat stanza-chat-peer
               (if room
                   (format " (%s as %s, %d in the room)" (plist-get room :state)
                           (plist-get room :nick)
                           (if occupants (hash-table-count occupants) 0))
                 " (not joined)")
               (if (stanza--nonempty (plist-get room :subject))
                   (concat ": " (plist-get room :subject))
                 ""))))
    (_
     (let ((presence (stanza--presence-of stanza-chat-account stanza-chat-peer))
           (name (stanza--display-name stanza-chat-account stanza-chat-peer)))
       (concat name
               (if (equal name stanza-chat-peer) "" (format " <%s>" stanza-chat-peer))
               " — " (car presence)
               (if (stanza--nonempty (cdr presence)) (concat ": " (cdr presence)) "")
               (pcase stanza-chat--peer-state
                 ("composing" " — typing…")
                 ("paused" " — stopped typing")
                 (_ "")))))))

;;;;; Rendering and placing messages

(defmacro stanza-chat--output (&rest body)
  "Run BODY to modify the history of this conversation buffer.
Read-only text may change; the change is not undoable, and as undo
positions after it would be wrong, the undo list is dropped.  The
buffer's modified flag stays as it was."
  (declare (indent 0) (debug t))
  (let ((modified (make-symbol "modified")))
    `(let ((,modified (buffer-modified-p)))
       (prog1 (let ((inhibit-read-only t)
                    (buffer-undo-list t))
                ,@body)
         (unless (eq buffer-undo-list t) (setq buffer-undo-list nil))
         (restore-buffer-modified-p ,modified)))))

(defun stanza-chat--day (time)
  "The local day of TIME, as a string."
  (format-time-string "%Y-%m-%d" time))

(defun stanza-chat--nick-face (nick own)
  "The face of NICK; OWN when it is yours."
  (cond (own 'stanza-own-nick)
        ((null stanza-nick-colors) 'stanza-nick)
        (t `(:inherit stanza-nick
             :foreground ,(nth (mod (sxhash-equal nick) (length stanza-nick-colors))
                               stanza-nick-colors)))))

(defun stanza-chat--state-text (msg)
  "The delivery state shown after the outgoing message MSG."
  (let* ((state (plist-get msg :state))
         (text (or (cdr (assoc state stanza-state-indicators)) state)))
    (when (and (equal state "failed") (stanza--nonempty (plist-get msg :error)))
      (setq text (format "%s %s" text (plist-get msg :error))))
    (propertize text 'face (if (equal state "failed") 'stanza-state-failed 'stanza-state)
                'help-echo (format "State: %s" state))))

(defun stanza-chat--encryption-text (msg)
  "The lock shown before the text of MSG when it came encrypted, else \"\"."
  (let ((trust (plist-get msg :trust)))
    (if (not (plist-get msg :encryption)) ""
      (concat (propertize stanza-encrypted-indicator 'face 'stanza-encrypted
                          'help-echo (format "Encrypted (%s)%s" (plist-get msg :encryption)
                                             (if trust (format ", device %s" trust) "")))
              (if (member trust '(nil "blind" "trusted" "own")) ""
                (propertize (format "[device %s] " trust) 'face 'stanza-encryption-warning))))))

(defun stanza-chat--render (msg)
  "The text of MSG (a message plist), with its properties."
  (let* ((time (plist-get msg :time))
         (error (plist-get msg :decrypt-error))
         (body (if (and error (equal (plist-get msg :body) ""))
                   (format "[%s message not decrypted: %s]"
                           (if (plist-get msg :encryption) "OMEMO" "this") error)
                 (plist-get msg :body)))
         (stamp (propertize (format-time-string stanza-timestamp-format time)
                            'face 'stanza-timestamp))
         (indent (make-string (string-width stamp) ?\s))
         (text
          (if (plist-get msg :notice)
              (concat stamp (propertize (concat "-!- " body) 'face 'stanza-notice))
            (let* ((action (string-prefix-p "/me " body))
                   (shown (if action (substring body 4) body))
                   (nick (propertize (plist-get msg :nick) 'face
                                     (stanza-chat--nick-face (plist-get msg :nick)
                                                             (plist-get msg :own))))
                   (face (cond (error 'stanza-state-failed)
                               ((plist-get msg :mention) 'stanza-mention)
                               (action 'stanza-action))))
              (concat stamp
                      (if action (concat "* " nick " ") (format stanza-nick-format nick))
                      (if error "" (stanza-chat--encryption-text msg))
                      (propertize (replace-regexp-in-string "\n" (concat "\n" indent) shown t t)
                                  'face face)
                      (if (plist-get msg :edited) (propertize " (edited)" 'face 'stanza-state) "")
                      (if (plist-get msg :state)
                          (concat " " (stanza-chat--state-text msg))
                        ""))))))
    (setq text (concat text "\n"))
    (add-text-properties
     0 (length text)
     (list 'stanza-unit (list 'unit) 'stanza-message msg
           'stanza-time time 'stanza-day (stanza-chat--day time)
           'stanza-msg-id (plist-get msg :id)
           'stanza-original-id (plist-get msg :original-id)
           'stanza-archive-id (plist-get msg :archive-id)
           'stanza-sender (plist-get msg :sender)
           'stanza-state (plist-get msg :state)
           'read-only t 'front-sticky t)
     text)
    text))

(defun stanza-chat--separator (time)
  "The day separator before the messages of the day of TIME."
  (let ((text (concat (propertize (format-time-string stanza-day-separator-format time)
                                  'face 'stanza-day-separator)
                      "\n")))
    (add-text-properties 0 (length text)
                         (list 'stanza-unit (list 'separator) 'stanza-separator t
                               'stanza-day (stanza-chat--day time)
                               'read-only t 'front-sticky t)
                         text)
    text))

(defun stanza-chat--unit-start (pos)
  "Return the start of the unit (message, notice or separator) ending at POS."
  (previous-single-property-change pos 'stanza-unit nil (point-min)))

(defun stanza-chat--unit-end (pos)
  "Return the end of the unit beginning at POS."
  (next-single-property-change pos 'stanza-unit nil (marker-position stanza-chat--prompt-marker)))

(defun stanza-chat--position-for (time)
  "Return the position for a message of TIME, keeping the time order."
  (cond
   ((or (null stanza-chat--last-time) (>= time stanza-chat--last-time))
    (marker-position stanza-chat--prompt-marker))
   ((< time stanza-chat--first-time) (point-min))
   (t
    (let ((pos (marker-position stanza-chat--prompt-marker)))
      (catch 'found
        (while (> pos (point-min))
          (let* ((start (stanza-chat--unit-start pos))
                 (time-there (get-text-property start 'stanza-time)))
            (when (and time-there (<= time-there time))
              (throw 'found pos))
            (setq pos start)))
        pos)))))

(defun stanza-chat--insert-message (msg)
  "Insert MSG (a message plist) where its time puts it.
Day separators are added and removed around it as needed."
  (let* ((time (plist-get msg :time))
         (day (stanza-chat--day time))
         (pos (stanza-chat--position-for time))
         (at-end (= pos stanza-chat--prompt-marker))
         start)
    (stanza-chat--output
     (save-excursion
      (goto-char pos)
      (unless (and (> pos (point-min))
                   (equal (get-text-property (stanza-chat--unit-start pos) 'stanza-day) day))
        (insert (stanza-chat--separator time)))
      (setq start (point))
      (insert (stanza-chat--render msg))
      (let ((after (point)))
        (when (< after stanza-chat--prompt-marker)
          (let ((next-day (get-text-property after 'stanza-day)))
            (cond
             ((and (get-text-property after 'stanza-separator) (equal next-day day))
              (delete-region after (stanza-chat--unit-end after)))
             ((and (not (get-text-property after 'stanza-separator))
                   (not (equal next-day day)))
              (insert (stanza-chat--separator (get-text-property after 'stanza-time))))))))))
    (when (plist-get msg :id) (puthash (plist-get msg :id) t stanza-chat--ids))
    (setq stanza-chat--first-time (if stanza-chat--first-time (min stanza-chat--first-time time) time)
          stanza-chat--last-time (if stanza-chat--last-time (max stanza-chat--last-time time) time))
    (when (and at-end (not (plist-get msg :own)) (not (plist-get msg :notice))
               (plist-get msg :id))
      (setq stanza-chat--last-incoming (plist-get msg :id)
            stanza-chat--last-incoming-time time))
    start))

(defun stanza-chat--find (prop value)
  "The (START . END) of the newest message whose PROP is VALUE, or nil."
  (save-excursion
    (goto-char stanza-chat--prompt-marker)
    (let ((match (text-property-search-backward prop value t)))
      (and match (cons (prop-match-beginning match) (prop-match-end match))))))

(defun stanza-chat--rerender (region msg)
  "Replace the message in REGION, a (START . END), by MSG."
  (stanza-chat--output
    (save-excursion
      (goto-char (car region))
      (delete-region (car region) (cdr region))
      (insert (stanza-chat--render msg)))))

(defconst stanza-chat--state-rank
  '(("pending" . 0) ("accepted" . 1) ("sent" . 2) ("acked" . 3)
    ("delivered" . 4) ("displayed" . 5) ("failed" . 6))
  "The order of delivery states: states only move forward.")

(defun stanza-chat--set-state (msg-id state error)
  "Show STATE (with ERROR) for the message MSG-ID of this buffer."
  (let ((region (stanza-chat--find 'stanza-msg-id msg-id)))
    (when region
      (let* ((msg (copy-sequence (get-text-property (car region) 'stanza-message)))
             (old (or (cdr (assoc (plist-get msg :state) stanza-chat--state-rank)) -1))
             (new (or (cdr (assoc state stanza-chat--state-rank)) -1)))
        (when (and (> new old) (< old 6))
          (setq msg (plist-put msg :state state))
          (setq msg (plist-put msg :error error))
          (stanza-chat--rerender region msg))))))

(defun stanza-chat--correct-in-place (original msg)
  "Show MSG as the new text of the message whose id is ORIGINAL.
Return nil when that message is not in this buffer."
  (let ((region (or (stanza-chat--find 'stanza-original-id original)
                    (stanza-chat--find 'stanza-msg-id original))))
    (when region
      (let ((old (copy-sequence (get-text-property (car region) 'stanza-message))))
        (setq old (plist-put old :body (plist-get msg :body)))
        (setq old (plist-put old :edited t))
        (when (plist-get msg :id)
          (setq old (plist-put old :id (plist-get msg :id)))
          (puthash (plist-get msg :id) t stanza-chat--ids))
        (when (plist-get msg :own)
          (setq old (plist-put old :state (plist-get msg :state))))
        (stanza-chat--rerender region old)
        t))))

;;;;; Unread, activity and read markers

(defun stanza-chat--visible-p ()
  "Non-nil when this buffer is shown in a window."
  (get-buffer-window (current-buffer) 'visible))

(defun stanza-chat--note-incoming (msg)
  "Count the incoming message MSG as unread unless it is in view."
  (if (stanza-chat--visible-p)
      (stanza-chat--schedule-read-check)
    (when (= stanza-chat-unread 0)
      (stanza-chat--move-new-marker (plist-get msg :id)))
    (cl-incf stanza-chat-unread)
    (when (plist-get msg :mention) (setq stanza-chat--mentioned t))
    (stanza--activity-add (current-buffer) stanza-chat--mentioned)
    (stanza-roster--schedule)))

(defun stanza-chat--move-new-marker (msg-id)
  "Put the unread line above the message MSG-ID."
  (let ((region (and msg-id (stanza-chat--find 'stanza-msg-id msg-id))))
    (when region
      (unless stanza-chat--new-overlay
        (setq stanza-chat--new-overlay (make-overlay 1 1))
        (overlay-put stanza-chat--new-overlay 'before-string
                     (propertize "--- new messages ---\n" 'face 'stanza-read-marker)))
      (move-overlay stanza-chat--new-overlay (car region) (car region)))))

(defun stanza-chat--seen ()
  "This conversation is on screen: its messages are no longer unread."
  (when (or (> stanza-chat-unread 0) stanza-chat--mentioned)
    (setq stanza-chat-unread 0
          stanza-chat--mentioned nil)
    (stanza--activity-remove (current-buffer))
    (stanza-roster--schedule))
  (stanza-chat--maybe-mark-read))

(defun stanza-chat--schedule-read-check ()
  "Check soon whether to send a read marker (once for many messages)."
  (unless stanza-chat--read-timer
    (setq stanza-chat--read-timer
          (run-at-time 0.5 nil
                       (lambda (buffer)
                         (when (buffer-live-p buffer)
                           (with-current-buffer buffer
                             (setq stanza-chat--read-timer nil)
                             (stanza-chat--maybe-mark-read))))
                       (current-buffer)))))

(defun stanza-chat--maybe-mark-read ()
  "Send a read marker when the last incoming message is in view."
  (when (and stanza-send-read-markers stanza-chat--last-incoming
             (not (equal stanza-chat--last-incoming stanza-chat--displayed))
             (memq stanza-chat-kind '(chat room))
             (stanza-connected-p))
    (let ((window (get-buffer-window (current-buffer) 'visible)))
      (when (and window
                 (pos-visible-in-window-p
                  (max (point-min) (1- stanza-chat--prompt-marker)) window))
        (setq stanza-chat--displayed stanza-chat--last-incoming)
        (stanza--request "displayed" `((account . ,stanza-chat-account)
                                       (to . ,stanza-chat-peer)
                                       (msg_id . ,stanza-chat--last-incoming))
                         #'stanza--log-failure)
        ;; The read marker shared with every front end (IRC MARKREAD sees it too).
        (when stanza-chat--last-incoming-time
          (stanza--request "read-marker"
                           `((account . ,stanza-chat-account)
                             (peer . ,(stanza--bare stanza-chat-peer))
                             (stamp . ,(format-time-string "%FT%T.%3NZ" stanza-chat--last-incoming-time t)))
                           #'stanza--log-failure))))))

(defun stanza--on-window-change (frame)
  "Clear the activity of conversations now shown in FRAME."
  (dolist (window (window-list frame 'no-minibuffer))
    (let ((buffer (window-buffer window)))
      (when (eq (buffer-local-value 'major-mode buffer) 'stanza-chat-mode)
        (with-current-buffer buffer (stanza-chat--seen))))))

(defun stanza-chat--on-scroll (window _start)
  "After WINDOW scrolled: maybe mark read, maybe load older messages."
  (with-current-buffer (window-buffer window)
    (when (derived-mode-p 'stanza-chat-mode)
      (stanza-chat--maybe-mark-read))))

(defun stanza-chat--post-command ()
  "After a command: load older messages when point went to the top."
  (when (and stanza-load-older-at-top (bobp) stanza-chat--last-time
             (eq (window-buffer) (current-buffer)))
    (stanza-chat-load-older t))
  (when (stanza-chat--visible-p) (stanza-chat--seen)))

(defun stanza--use-tracking-p ()
  "Return non-nil when activity is shown through tracking.el."
  (and stanza-use-tracking
       (or (featurep 'tracking) (require 'tracking nil t))
       (fboundp 'tracking-add-buffer)))

(defun stanza--activity-add (buffer mention)
  "Show BUFFER as having unread messages; MENTION when one mentions you."
  (if (stanza--use-tracking-p)
      (tracking-add-buffer buffer (list (if mention 'stanza-activity-mention 'stanza-activity)))
    (setq stanza--activity (cons buffer (delq buffer stanza--activity)))
    (stanza--activity-update)))

(defun stanza--activity-remove (buffer)
  "BUFFER has no unread messages any more."
  (when (and (stanza--use-tracking-p) (fboundp 'tracking-remove-buffer))
    (tracking-remove-buffer buffer))
  (when (memq buffer stanza--activity)
    (setq stanza--activity (delq buffer stanza--activity))
    (stanza--activity-update)))

(defun stanza--activity-update ()
  "Rebuild `stanza-activity-mode-line-string'."
  (setq stanza--activity (cl-remove-if-not #'buffer-live-p stanza--activity))
  (setq stanza-activity-mode-line-string
        (if (null stanza--activity)
            ""
          (concat
           " ["
           (mapconcat
            (lambda (buffer)
              (with-current-buffer buffer
                (propertize (format "%s:%d"
                                    (if (eq stanza-chat-kind 'chat)
                                        (stanza--display-name stanza-chat-account stanza-chat-peer)
                                      (stanza--local stanza-chat-peer))
                                    stanza-chat-unread)
                            'face (if stanza-chat--mentioned 'stanza-activity-mention 'stanza-activity)
                            'help-echo "mouse-1: show this conversation"
                            'mouse-face 'mode-line-highlight
                            'local-map (let ((map (make-sparse-keymap)))
                                         (define-key map [mode-line mouse-1]
                                           (lambda () (interactive) (switch-to-buffer buffer)))
                                         map))))
            stanza--activity ",")
           "]")))
  (force-mode-line-update t))

(defun stanza-activity ()
  "The conversation buffers with unread messages, most recent first."
  (setq stanza--activity (cl-remove-if-not #'buffer-live-p stanza--activity)))

(defun stanza-next-unread ()
  "Show the conversation with the most recent unread messages."
  (interactive)
  (let ((buffer (car (stanza-activity))))
    (if buffer
        (switch-to-buffer buffer)
      (message "Stanza: nothing unread"))))

;;;;; Input

(defun stanza-chat--input ()
  "The text after the prompt."
  (buffer-substring-no-properties stanza-chat--input-marker (point-max)))

(defun stanza-chat--set-input (text)
  "Replace the text after the prompt by TEXT."
  (delete-region stanza-chat--input-marker (point-max))
  (goto-char (point-max))
  (insert text))

(defun stanza-chat-send-input ()
  "Send the text after the prompt; a line starting with / is a command.
In the history above the prompt, go to the prompt instead."
  (interactive)
  (if (< (point) stanza-chat--input-marker)
      (goto-char (point-max))
    (let ((input (stanza-chat--input)))
      (unless (string-empty-p (string-trim input))
        (ring-insert stanza-chat--input-ring input)
        (setq stanza-chat--input-index nil)
        (let ((inhibit-modification-hooks t))
          (stanza-chat--set-input ""))
        (stanza-chat-execute input)))))

(defun stanza-chat-execute (input)
  "Send INPUT in this conversation, or run it when it is a /command."
  (cond
   ((string-prefix-p "//" input) (stanza-chat--say (substring input 1)))
   ((string-match "\\`/\\([a-z]+\\)\\(?:[ \t]+\\(\\(?:.\\|\n\\)*\\)\\)?\\'" input)
    (stanza-chat--command (match-string 1 input) (or (match-string 2 input) "")))
   (t (stanza-chat--say input))))

(defun stanza-chat--say (body)
  "Send BODY to this conversation's peer."
  (setq stanza-chat--my-state nil)
  (when stanza-chat--state-timer (cancel-timer stanza-chat--state-timer))
  (stanza-send-message stanza-chat-account stanza-chat-peer body
                       (and (eq stanza-chat-kind 'room) "groupchat")))

(defconst stanza-chat--commands
  '(("me" . "/me TEXT: an action")
    ("join" . "/join ROOM [NICK]: join a room")
    ("part" . "/part [REASON]: leave this room")
    ("topic" . "/topic [TEXT]: show or set the topic of this room")
    ("nick" . "/nick NICK: change your nick in this room")
    ("query" . "/query JID: open a conversation")
    ("msg" . "/msg JID TEXT: send one message")
    ("history" . "/history: load older messages")
    ("help" . "/help: this list"))
  "The /commands of conversation buffers.")

(defun stanza-chat--command (name args)
  "Run the /command NAME with the string ARGS."
  (let ((words (split-string args nil t))
        (room (and (eq stanza-chat-kind 'room) stanza-chat-peer)))
    (pcase name
      ("me" (stanza-chat--say (concat "/me " args)))
      ("join"
       (unless words (user-error "Usage: /join ROOM [NICK]"))
       (stanza-join stanza-chat-account (car words) (cadr words)))
      ("part"
       (unless room (user-error "Use /part in a room"))
       (stanza-part stanza-chat-account room (stanza--nonempty args)))
      ("topic"
       (unless room (user-error "Use /topic in a room"))
       (if (stanza--nonempty (string-trim args))
           (stanza--request "subject" `((account . ,stanza-chat-account) (room . ,room)
                                        (subject . ,args)))
         (message "Topic: %s" (or (plist-get (stanza--room stanza-chat-account room) :subject)
                                  "(none)"))))
      ("nick"
       (unless (and room words) (user-error "Usage in a room: /nick NICK"))
       (stanza-join stanza-chat-account room (car words)))
      ("query"
       (unless words (user-error "Usage: /query JID"))
       (pop-to-buffer-same-window
        (stanza-chat--get-buffer stanza-chat-account (car words) 'chat t)))
      ("msg"
       (unless (cdr words) (user-error "Usage: /msg JID TEXT"))
       (stanza-send-message stanza-chat-account (car words)
                            (string-trim (substring args (length (car words))))))
      ("history" (stanza-chat-load-older))
      ("help" (message "%s" (mapconcat #'cdr stanza-chat--commands "\n")))
      (_ (user-error "Unknown command /%s (/help lists them; // sends a leading /)" name)))))

(defun stanza-chat-previous-input (n)
  "Replace the input by the Nth previous one sent."
  (interactive "p")
  (unless (ring-empty-p stanza-chat--input-ring)
    (unless stanza-chat--input-index
      (setq stanza-chat--saved-input (stanza-chat--input)
            stanza-chat--input-index -1))
    (setq stanza-chat--input-index
          (max 0 (min (1- (ring-length stanza-chat--input-ring))
                      (+ stanza-chat--input-index n))))
    (stanza-chat--set-input (ring-ref stanza-chat--input-ring stanza-chat--input-index))))

(defun stanza-chat-next-input (n)
  "Replace the input by the Nth next one sent, or what was being typed."
  (interactive "p")
  (when stanza-chat--input-index
    (setq stanza-chat--input-index (- stanza-chat--input-index n))
    (if (< stanza-chat--input-index 0)
        (progn (stanza-chat--set-input (or stanza-chat--saved-input ""))
               (setq stanza-chat--input-index nil))
      (stanza-chat--set-input (ring-ref stanza-chat--input-ring stanza-chat--input-index)))))

(defun stanza-chat--after-change (beg _end _length)
  "Tell the contact we are typing when the input changed at BEG."
  (when (and stanza-send-chat-states (eq stanza-chat-kind 'chat)
             stanza-chat--input-marker (>= beg stanza-chat--input-marker)
             (not (string-empty-p (stanza-chat--input)))
             (stanza-connected-p))
    (unless (equal stanza-chat--my-state "composing")
      (stanza-chat--send-chat-state "composing"))
    (when stanza-chat--state-timer (cancel-timer stanza-chat--state-timer))
    (setq stanza-chat--state-timer
          (run-at-time 10 nil #'stanza-chat--paused (current-buffer)))))

(defun stanza-chat--paused (buffer)
  "Tell the contact of BUFFER that we stopped typing."
  (when (buffer-live-p buffer)
    (with-current-buffer buffer
      (setq stanza-chat--state-timer nil)
      (when (equal stanza-chat--my-state "composing")
        (stanza-chat--send-chat-state "paused")))))

(defun stanza-chat--send-chat-state (state)
  "Send the chat STATE to this conversation's contact."
  (setq stanza-chat--my-state state)
  (stanza--request "chat-state" `((account . ,stanza-chat-account) (to . ,stanza-chat-peer)
                                  (state . ,state))
                   #'stanza--log-failure))

;;;;; Acting on the message at point

(defun stanza-chat-message-at (&optional pos)
  "The message plist at POS (default: point), or nil."
  (get-text-property (or pos (point)) 'stanza-message))

(defun stanza-chat-message-info ()
  "Show the id, time, sender and state of the message at point."
  (interactive)
  (let ((msg (or (stanza-chat-message-at) (user-error "No message at point"))))
    (message "%s from %s, id %s%s"
             (format-time-string "%F %T" (plist-get msg :time))
             (plist-get msg :sender) (plist-get msg :id)
             (if (plist-get msg :state) (format ", %s" (plist-get msg :state)) ""))))

(defun stanza-chat-quote ()
  "Quote the message at point in the input."
  (interactive)
  (let ((msg (or (stanza-chat-message-at) (user-error "No message at point"))))
    (goto-char (point-max))
    (insert (replace-regexp-in-string "^" "> " (plist-get msg :body)) "\n")))

(defun stanza-chat-correct ()
  "Correct your message at point (or your last one) with the input (XEP-0308).
With an empty input, put the message's text there to edit it first."
  (interactive)
  (let* ((msg (or (let ((m (stanza-chat-message-at))) (and (plist-get m :own) m))
                  (save-excursion
                    (goto-char stanza-chat--prompt-marker)
                    (let ((match (text-property-search-backward
                                  'stanza-message nil
                                  (lambda (_ v) (and v (plist-get v :own))))))
                      (and match (get-text-property (prop-match-beginning match)
                                                    'stanza-message))))
                  (user-error "None of your messages here"))))
    (if (string-empty-p (string-trim (stanza-chat--input)))
        (progn (stanza-chat--set-input (plist-get msg :body))
               (message "Edit, then C-c C-e again to send the correction"))
      (let ((body (stanza-chat--input)))
        (let ((inhibit-modification-hooks t)) (stanza-chat--set-input ""))
        (stanza-send-message stanza-chat-account stanza-chat-peer body
                             (and (eq stanza-chat-kind 'room) "groupchat")
                             (plist-get msg :original-id))))))

(defun stanza-chat-previous-message ()
  "Move to the start of the previous message."
  (interactive)
  (let ((match (text-property-search-backward 'stanza-msg-id nil nil t)))
    (when match (goto-char (prop-match-beginning match)))))

(defun stanza-chat-next-message ()
  "Move to the start of the next message."
  (interactive)
  (let ((match (text-property-search-forward 'stanza-msg-id nil nil t)))
    (when match (goto-char (prop-match-beginning match)))))

;;;;; Older messages

(defun stanza-chat--oldest-archive-id ()
  "The archive id of the oldest message here that has one, or nil."
  (let ((pos (if (get-text-property (point-min) 'stanza-archive-id)
                 (point-min)
               (next-single-property-change (point-min) 'stanza-archive-id))))
    (and pos (< pos stanza-chat--prompt-marker)
         (get-text-property pos 'stanza-archive-id))))

(defun stanza-chat-load-older (&optional quiet)
  "Load older messages of this conversation from the server's archive.
With QUIET, say nothing when there is nothing to load."
  (interactive)
  (cond
   ((not (memq stanza-chat-kind '(chat room)))
    (unless quiet (message "Stanza: no archive for private messages in rooms")))
   (stanza-chat--history-complete (unless quiet (message "Stanza: no older messages")))
   (stanza-chat--history-loading nil)
   ((not (stanza-connected-p)) (unless quiet (message "Stanza: not connected")))
   (t
    (setq stanza-chat--history-loading t)
    (let ((buffer (current-buffer))
          (before (or stanza-chat--history-before (stanza-chat--oldest-archive-id) "")))
      (message "Stanza: loading older messages…")
      (stanza--request
       "history" `((account . ,stanza-chat-account) (with . ,stanza-chat-peer)
                   (before . ,before) (max . ,stanza-history-page-size))
       (lambda (reply)
         (when (buffer-live-p buffer)
           (with-current-buffer buffer
             (setq stanza-chat--history-loading nil)
             (if (not (eq (alist-get 'ok reply) t))
                 (stanza--complain "history" reply)
               (let ((n (stanza-chat--insert-history (alist-get 'messages reply))))
                 (setq stanza-chat--history-before (stanza--nonempty (alist-get 'first reply))
                       stanza-chat--history-complete
                       (or (alist-get 'complete reply) (null stanza-chat--history-before)))
                 (message "Stanza: %d older message%s%s" n (if (= n 1) "" "s")
                          (if stanza-chat--history-complete ", that is all" ""))))))))))))

(defun stanza-chat--insert-history (events)
  "Insert the archived message EVENTS; return how many were new here.
Point, and the point of windows, stay on the message they were on
when that was the first one."
  (let* ((n 0)
         (anchor (copy-marker (point-min) t))
         (at-top (= (point) (point-min)))
         (windows (cl-remove-if-not (lambda (w) (= (window-point w) (point-min)))
                                    (get-buffer-window-list (current-buffer) nil t))))
    (seq-doseq (event events)
      (let ((id (stanza--nonempty (alist-get 'msg_id event))))
        (when (and id (stanza--nonempty (alist-get 'body event))
                   (not (gethash id stanza-chat--ids)))
          (let ((msg (stanza--message-plist event stanza-chat-kind stanza-chat-peer)))
            (setq msg (plist-put msg :history t))
            (stanza-chat--insert-message msg)
            (cl-incf n)))))
    (when at-top (goto-char anchor))
    (dolist (window windows) (set-window-point window anchor))
    (set-marker anchor nil)
    n))

;;;;; Composing long messages

(defvar-local stanza-compose--target nil "The conversation buffer a compose buffer sends to.")

(defvar stanza-compose-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "C-c C-c") #'stanza-compose-send)
    (define-key map (kbd "C-c C-k") #'stanza-compose-cancel)
    map)
  "Keymap of compose buffers.")

(define-derived-mode stanza-compose-mode text-mode "Stanza-Compose"
  "Major mode for writing a long message.
\\<stanza-compose-mode-map>\\[stanza-compose-send] sends it, \\[stanza-compose-cancel] gives up.

\\{stanza-compose-mode-map}"
  (setq-local header-line-format
              (substitute-command-keys
               "Compose: \\<stanza-compose-mode-map>\\[stanza-compose-send] sends, \\[stanza-compose-cancel] cancels")))

(defun stanza-chat-compose ()
  "Write a message in a buffer of its own, starting from the input."
  (interactive)
  (let ((target (current-buffer))
        (text (stanza-chat--input)))
    (let ((inhibit-modification-hooks t)) (stanza-chat--set-input ""))
    (pop-to-buffer (generate-new-buffer (format "*stanza compose: %s*" stanza-chat-peer)))
    (stanza-compose-mode)
    (setq stanza-compose--target target)
    (insert text)))

(defun stanza-compose-send ()
  "Send the compose buffer's text as one message and close it."
  (interactive)
  (let ((text (string-trim-right (buffer-string)))
        (target stanza-compose--target))
    (unless (buffer-live-p target) (user-error "The conversation is gone"))
    (unless (string-empty-p text)
      (with-current-buffer target
        (ring-insert stanza-chat--input-ring text)
        (stanza-chat--say text)))
    (quit-window t)))

(defun stanza-compose-cancel ()
  "Close the compose buffer without sending."
  (interactive)
  (quit-window t))

;;;; The roster buffer

(defconst stanza-roster-buffer-name "*stanza*"
  "The name of the roster buffer.")

(defvar stanza-roster--timer nil "Timer of the next roster redisplay.")

(defvar stanza-roster-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "RET") #'stanza-roster-open)
    (define-key map (kbd "n") #'stanza-roster-next)
    (define-key map (kbd "p") #'stanza-roster-previous)
    (define-key map (kbd "TAB") #'stanza-roster-next)
    (define-key map (kbd "<backtab>") #'stanza-roster-previous)
    (define-key map (kbd "g") #'stanza-roster-refresh)
    (define-key map (kbd "j") #'stanza-join)
    (define-key map (kbd "s") #'stanza-set-presence)
    (define-key map (kbd "+") #'stanza-add-contact)
    (define-key map (kbd "A") #'stanza-roster-approve)
    (define-key map (kbd "X") #'stanza-roster-deny)
    (define-key map (kbd "o") #'stanza-roster-toggle-offline)
    (define-key map (kbd "u") #'stanza-next-unread)
    (define-key map (kbd "c") #'stanza-connect)
    (define-key map (kbd "d") #'stanza-disconnect)
    (define-key map (kbd "L") #'stanza-show-log)
    map)
  "Keymap of the roster buffer.")

(define-derived-mode stanza-roster-mode special-mode "Stanza-Roster"
  "Major mode of the roster: accounts, contacts and rooms.

\\{stanza-roster-mode-map}"
  (setq-local revert-buffer-function (lambda (&rest _) (stanza-roster-refresh)))
  (setq-local truncate-lines t))

(defun stanza-roster--schedule ()
  "Arrange for one redisplay of the roster soon."
  (unless stanza-roster--timer
    (setq stanza-roster--timer (run-at-time 0.1 nil #'stanza-roster--render))))

(defun stanza-roster--line (item text &optional face)
  "Insert TEXT as a line for ITEM (a plist), in FACE."
  (let ((start (point)))
    (insert text "\n")
    (when face (add-face-text-property start (1- (point)) face t))
    (put-text-property start (point) 'stanza-item item)))

(defun stanza-roster--unread (account jid)
  "The unread count of the conversation with JID on ACCOUNT, as text."
  (let ((buffer (stanza-chat-buffer account jid)))
    (if (and buffer (> (buffer-local-value 'stanza-chat-unread buffer) 0))
        (propertize (format "  (%d)" (buffer-local-value 'stanza-chat-unread buffer))
                    'face 'stanza-roster-unread)
      "")))

(defun stanza-roster--contact (account item)
  "Insert the line of the roster ITEM of ACCOUNT."
  (let* ((jid (alist-get 'jid item))
         (name (stanza--display-name account jid))
         (presence (stanza--presence-of account jid))
         (show (car presence))
         (face (pcase show
                 ((or "online" "chat") 'stanza-roster-online)
                 ((or "offline" "unknown") 'stanza-roster-offline)
                 (_ 'stanza-roster-away))))
    (when (or stanza-roster-show-offline (not (equal show "offline"))
              (stanza-chat-buffer account jid))
      (stanza-roster--line
       (list :kind 'contact :account account :jid jid)
       (concat "    "
               (propertize (or (cdr (assoc show stanza-roster-presence-symbols)) "?") 'face face)
               " " (propertize name 'face 'bold)
               (if (equal name jid) "" (format "  %s" jid))
               "  " (propertize (concat show (if (stanza--nonempty (cdr presence))
                                                 (concat ": " (cdr presence)) ""))
                                'face face)
               (if (member (alist-get 'subscription item) '("both" "to"))
                   ""
                 (propertize (format "  [subscription: %s]" (alist-get 'subscription item))
                             'face 'shadow))
               (stanza-roster--unread account jid))))))

(defun stanza-roster--render-account (account)
  "Insert the section of ACCOUNT."
  (let* ((name (car account)) (info (cdr account))
         (table (gethash name stanza--roster))
         (groups (make-hash-table :test 'equal))
         (in-roster (make-hash-table :test 'equal)))
    (insert "\n")
    (stanza-roster--line
     (list :kind 'account :account name)
     (concat (propertize name 'face 'stanza-roster-account) "  " (or (plist-get info :jid) "")
             "  " (or (plist-get info :state) "?")
             (if (stanza--nonempty (plist-get info :reason))
                 (format " (%s)" (plist-get info :reason)) "")))
    (when table
      (maphash (lambda (jid item)
                 (puthash jid t in-roster)
                 (let ((item-groups (append (alist-get 'groups item) nil)))
                   (dolist (group (or item-groups '("")))
                     (push item (gethash group groups)))))
               table))
    (let ((names (sort (hash-table-keys groups)
                       (lambda (a b) (cond ((string-empty-p a) nil)
                                           ((string-empty-p b) t)
                                           (t (string< a b)))))))
      (dolist (group names)
        (stanza-roster--line (list :kind 'group :account name)
                             (concat "  " (if (string-empty-p group) "Contacts" group))
                             'stanza-roster-group)
        (dolist (item (sort (gethash group groups)
                            (lambda (a b) (string< (downcase (stanza--display-name name (alist-get 'jid a)))
                                                   (downcase (stanza--display-name name (alist-get 'jid b)))))))
          (stanza-roster--contact name item))))
    (let ((rooms nil) (others nil))
      (maphash (lambda (key room)
                 (when (string-prefix-p (concat name "\0") key)
                   (push (cons (substring key (1+ (length name))) room) rooms)))
               stanza--rooms)
      (maphash (lambda (key buffer)
                 (when (and (string-prefix-p (concat name "\0") key) (buffer-live-p buffer))
                   (let ((peer (substring key (1+ (length name)))))
                     (unless (or (gethash peer in-roster) (assoc peer rooms))
                       (push (cons peer buffer) others)))))
               stanza--buffers)
      (when rooms
        (stanza-roster--line (list :kind 'group :account name) "  Rooms" 'stanza-roster-group)
        (dolist (entry (sort rooms (lambda (a b) (string< (car a) (car b)))))
          (let ((room (cdr entry)))
            (stanza-roster--line
             (list :kind 'room :account name :jid (car entry))
             (concat "    # " (propertize (car entry) 'face 'bold)
                     (format "  %s as %s" (plist-get room :state) (plist-get room :nick))
                     (if (stanza--nonempty (plist-get room :subject))
                         (propertize (concat "  " (plist-get room :subject)) 'face 'shadow)
                       "")
                     (stanza-roster--unread name (car entry)))))))
      (when others
        (stanza-roster--line (list :kind 'group :account name) "  Other conversations"
                             'stanza-roster-group)
        (dolist (entry (sort others (lambda (a b) (string< (car a) (car b)))))
          (stanza-roster--line
           (list :kind 'conversation :account name :jid (car entry))
           (concat "    " (car entry) (stanza-roster--unread name (car entry))))))
      (let ((requests (cl-remove-if-not (lambda (r) (equal (car r) name)) stanza--requests)))
        (when requests
          (stanza-roster--line (list :kind 'group :account name)
                               "  Requests (A approves, X denies)" 'stanza-roster-group)
          (dolist (r requests)
            (stanza-roster--line (list :kind 'request :account name :jid (cdr r))
                                 (format "    ? %s wants to see your presence" (cdr r))))))
      (let ((invites (cl-remove-if-not (lambda (i) (equal (plist-get i :account) name))
                                       stanza--invites)))
        (when invites
          (stanza-roster--line (list :kind 'group :account name)
                               "  Invitations (RET joins)" 'stanza-roster-group)
          (dolist (i invites)
            (stanza-roster--line (append (list :kind 'invite :jid (plist-get i :room)) i)
                                 (format "    # %s from %s%s" (plist-get i :room)
                                         (plist-get i :from)
                                         (if (stanza--nonempty (plist-get i :reason))
                                             (format ": %s" (plist-get i :reason)) "")))))))))

(defun stanza-roster--render ()
  "Redisplay the roster buffer, keeping point on the same line."
  (setq stanza-roster--timer nil)
  (let ((buffer (get-buffer stanza-roster-buffer-name)))
    (when buffer
      (with-current-buffer buffer
        (let* ((inhibit-read-only t)
               (item (get-text-property (point) 'stanza-item))
               (line (line-number-at-pos))
               (windows (get-buffer-window-list buffer nil t))
               (starts (mapcar (lambda (w) (cons w (window-start w))) windows)))
          (erase-buffer)
          (insert (propertize "stanza" 'face 'bold) "  "
                  (cond ((stanza-connected-p)
                         (format "connected to %s as %s"
                                 (or (alist-get 'daemon (stanza-proto-hello-reply stanza-connection))
                                     "stanzad")
                                 (stanza-proto-client stanza-connection)))
                        ((and stanza-connection (stanza-proto-wanted stanza-connection))
                         (format "connecting to %s…" (stanza-proto-socket stanza-connection)))
                        (t "disconnected (c connects)"))
                  "\n")
          (dolist (account stanza--accounts)
            (stanza-roster--render-account account))
          (goto-char (point-min))
          (if (and item (plist-get item :jid)
                   (let ((match (text-property-search-forward
                                 'stanza-item item
                                 (lambda (a b) (and (equal (plist-get a :jid) (plist-get b :jid))
                                                    (equal (plist-get a :account) (plist-get b :account))
                                                    (eq (plist-get a :kind) (plist-get b :kind)))))))
                     (and match (goto-char (prop-match-beginning match)))))
              nil
            (goto-char (point-min))
            (forward-line (1- line)))
          (set-buffer-modified-p nil)
          (dolist (entry starts)
            (set-window-start (car entry) (min (cdr entry) (point-max)) t)
            (set-window-point (car entry) (point))))))))

(defun stanza-roster-refresh ()
  "Ask the daemon for the accounts, rosters and rooms again."
  (interactive)
  (if (not (stanza-connected-p))
      (stanza-connect)
    (stanza--request "accounts" nil
                     (lambda (reply)
                       (when (eq (alist-get 'ok reply) t)
                         (seq-doseq (info (alist-get 'accounts reply))
                           (stanza--update-account info))
                         (dolist (account stanza--accounts) (stanza--fetch (car account)))))))
  (stanza-roster--render))

(defun stanza-roster-open ()
  "Open the conversation, room or invitation on this line."
  (interactive)
  (let* ((item (or (get-text-property (point) 'stanza-item) (user-error "Nothing here")))
         (account (plist-get item :account))
         (jid (plist-get item :jid)))
    (pcase (plist-get item :kind)
      ((or 'contact 'conversation)
       (stanza-open account jid))
      ('room (stanza-open account jid 'room))
      ('invite
       (setq stanza--invites (cl-remove-if (lambda (i) (and (equal (plist-get i :room) jid)
                                                            (equal (plist-get i :account) account)))
                                           stanza--invites))
       (stanza-join account jid nil (stanza--nonempty (plist-get item :password))))
      ('request
       (if (y-or-n-p (format "Let %s see your presence? " jid))
           (stanza-roster-approve)
         (stanza-roster-deny)))
      (_ (user-error "Nothing to open here")))))

(defun stanza-open (account jid &optional kind)
  "Show the conversation with JID on ACCOUNT (KIND: `chat' or `room')."
  (let* ((kind (or kind (if (stanza--room account jid) 'room 'chat)))
         (buffer (stanza-chat--get-buffer account jid kind t)))
    (pop-to-buffer-same-window buffer)
    (with-current-buffer buffer
      (goto-char (point-max))
      (when (and stanza-history-on-open (null stanza-chat--last-time) (stanza-connected-p))
        (stanza-chat-load-older))
      (stanza-chat--seen))
    buffer))

(defun stanza-roster--item-of (kind)
  "The roster item at point, which must be of KIND."
  (let ((item (get-text-property (point) 'stanza-item)))
    (unless (eq (plist-get item :kind) kind) (user-error "Not on a %s" kind))
    item))

(defun stanza-roster-approve ()
  "Let the contact of this request see your presence."
  (interactive)
  (let ((item (stanza-roster--item-of 'request)))
    (stanza--request "approve" `((account . ,(plist-get item :account)) (jid . ,(plist-get item :jid))))
    (setq stanza--requests (delete (cons (plist-get item :account) (plist-get item :jid))
                                   stanza--requests))
    (stanza-roster--render)))

(defun stanza-roster-deny ()
  "Refuse the request on this line."
  (interactive)
  (let ((item (stanza-roster--item-of 'request)))
    (stanza--request "deny" `((account . ,(plist-get item :account)) (jid . ,(plist-get item :jid))))
    (setq stanza--requests (delete (cons (plist-get item :account) (plist-get item :jid))
                                   stanza--requests))
    (stanza-roster--render)))

(defun stanza-roster-toggle-offline ()
  "Show or hide offline contacts."
  (interactive)
  (setq stanza-roster-show-offline (not stanza-roster-show-offline))
  (stanza-roster--render))

(defun stanza-roster-next ()
  "Move to the next contact or room."
  (interactive)
  (let ((match (text-property-search-forward
                'stanza-item nil (lambda (_ v) (memq (plist-get v :kind) '(contact room conversation request invite)))
                t)))
    (if match (goto-char (prop-match-beginning match)) (message "No more"))))

(defun stanza-roster-previous ()
  "Move to the previous contact or room."
  (interactive)
  (beginning-of-line)
  (let ((match (text-property-search-backward
                'stanza-item nil (lambda (_ v) (memq (plist-get v :kind) '(contact room conversation request invite)))
                t)))
    (if match (goto-char (prop-match-beginning match)) (message "No more"))))

(defun stanza-show-log ()
  "Show the *stanza-log* buffer."
  (interactive)
  (display-buffer (get-buffer-create stanza-log-buffer-name)))

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
