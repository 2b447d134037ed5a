;;; stanza-chat.el --- Conversation buffers of stanza.el  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; A conversation buffer (`stanza-chat-mode'), one per contact, room
;; or room occupant: its history above a prompt, the header line, the
;; unread count and the read markers sent when its last message is in
;; view, the input with its /commands and history, commands on the
;; message at point, and the compose buffer for long messages.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'ring)
(require 'text-property-search)
(require 'stanza-core)
(require 'stanza-activity)
(require 'stanza-message)
(require 'stanza-history)

;; In files that require this one.
(declare-function stanza "stanza" ())
(declare-function stanza-send-message "stanza" (account to body &optional type replace))
(declare-function stanza-join "stanza-rooms" (account room &optional nick password))
(declare-function stanza-part "stanza-rooms" (account room &optional reason))
(declare-function stanza-roster--schedule "stanza-roster" ())

;;;; Options

(defcustom stanza-prompt "> "
  "The prompt before the input in conversation buffers."
  :type 'string
  :group 'stanza-chat)

(defcustom stanza-load-older-at-top t
  "When non-nil, moving to the top of a conversation loads older messages."
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

;;;; Faces

(defface stanza-prompt '((t :inherit minibuffer-prompt))
  "Face of the prompt."
  :group 'stanza-faces)

(defface stanza-read-marker '((t :inherit font-lock-warning-face))
  "Face of the line above the first unread message."
  :group 'stanza-faces)

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

;;;; Unread messages and read markers

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

;;;; Input

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

;;;; Acting on the message at point

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

;;;; Composing long messages

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

(provide 'stanza-chat)
;;; stanza-chat.el ends here
