;;; stanza-message.el --- How stanza.el shows messages  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; A message event of the daemon becomes a message plist
;; (`stanza--message-plist'), a plist becomes text with the properties
;; `stanza-msg-id', `stanza-time', `stanza-sender', `stanza-state' and
;; `stanza-message' (`stanza-chat--render'), and the text goes where
;; its time puts it in a conversation buffer, between day separators
;; (`stanza-chat--insert-message').  Delivery states and corrections
;; (XEP-0308) are redrawn in place.

;;; Code:

(require 'subr-x)
(require 'text-property-search)
(require 'stanza-core)
(require 'stanza-activity)

;;;; Options

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

;;;; Faces

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

(defface stanza-encrypted '((t :inherit success))
  "Face of the lock before an encrypted message."
  :group 'stanza-faces)

(defface stanza-encryption-warning '((t :inherit warning :weight bold))
  "Face of the warning about the device of an encrypted message (changed, undecided)."
  :group 'stanza-faces)

;;;; From an event to a message

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

;;;; Rendering and placing messages

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

(provide 'stanza-message)
;;; stanza-message.el ends here
