;;; stanza-rooms.el --- Rooms (MUC) in stanza.el  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Rooms (XEP-0045): the daemon's `room', `occupant', `subject' and
;; `invite' events update what this Emacs knows of each room and its
;; occupants and show as notices in the room's buffer; `stanza-join'
;; and `stanza-part' enter and leave one.

;;; Code:

(require 'seq)
(require 'stanza-core)
(require 'stanza-message)
(require 'stanza-chat)

;; In a file that requires this one.
(declare-function stanza-roster--schedule "stanza-roster" ())

;;;; Options

(defcustom stanza-show-occupant-changes t
  "When non-nil, room buffers show who joins, leaves and changes nick."
  :type 'boolean
  :group 'stanza-chat)

;;;; Room events

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

;;;; Joining and leaving

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

(provide 'stanza-rooms)
;;; stanza-rooms.el ends here
