;;; stanza-history.el --- Older messages from the archive  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Older messages of a conversation come from the server's archive
;; (XEP-0313) through the daemon's `history' op, a page at a time
;; (`stanza-chat-load-older'), and are placed by their time among what
;; the buffer shows.

;;; Code:

(require 'cl-lib)
(require 'seq)
(require 'stanza-core)
(require 'stanza-message)

;;;; Options

(defcustom stanza-history-page-size 50
  "How many older messages one request to the archive asks for (1 to 200)."
  :type 'integer
  :group 'stanza-chat)

(defcustom stanza-history-on-open t
  "When non-nil, opening an empty conversation loads its latest messages."
  :type 'boolean
  :group 'stanza-chat)

;;;; Older messages

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

(provide 'stanza-history)
;;; stanza-history.el ends here
