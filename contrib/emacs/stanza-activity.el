;;; stanza-activity.el --- Unread messages and notifications  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Which conversations have unread messages, shown in the mode line
;; (`stanza-activity-mode-line-string', or tracking.el's list when it
;; is installed), `stanza-next-unread', what counts as a mention in a
;; room, and the notifications of live direct messages and mentions.

;;; Code:

(require 'cl-lib)
(require 'stanza-core)

(declare-function tracking-add-buffer "tracking" (buffer &optional faces))
(declare-function tracking-remove-buffer "tracking" (buffer))
(declare-function notifications-notify "notifications" (&rest params))

;;;; Options

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

;;;; Faces

(defface stanza-activity '((t :inherit mode-line-emphasis))
  "Face of a conversation with unread messages in the mode line."
  :group 'stanza-faces)

(defface stanza-activity-mention '((t :inherit error :weight bold))
  "Face of a conversation that mentions you in the mode line."
  :group 'stanza-faces)

;;;; Unread conversations

(defvar stanza--activity nil
  "Conversation buffers with unread messages, most recent first.")

(defvar stanza-activity-mode-line-string ""
  "The unread conversations, as shown in the mode line.")
(put 'stanza-activity-mode-line-string 'risky-local-variable t)

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

;;;; Mentions and notifications

(defun stanza--mention-p (body words)
  "Non-nil when BODY mentions one of WORDS (case does not matter)."
  (let ((case-fold-search t))
    (cl-some (lambda (word)
               (and (stanza--nonempty word)
                    (string-match-p (concat "\\(?:\\`\\|\\W\\)" (regexp-quote word)
                                            "\\(?:\\W\\|\\'\\)")
                                    body)))
             words)))

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

(provide 'stanza-activity)
;;; stanza-activity.el ends here
