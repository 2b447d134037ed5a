;;; stanza-roster.el --- Contacts and the roster of stanza.el  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; Contacts and their presence: the daemon's `presence', `roster' and
;; `subscription' events, `stanza-set-presence' and
;; `stanza-add-contact'; and the roster buffer (`stanza-roster-mode'):
;; each account with its contacts by group, its rooms, its other
;; conversations, subscription requests and invitations, redrawn soon
;; after each change (`stanza-roster--schedule').

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'seq)
(require 'text-property-search)
(require 'stanza-core)
(require 'stanza-activity)
(require 'stanza-history)
(require 'stanza-chat)
(require 'stanza-rooms)

;; In stanza.el, which requires this file.
(declare-function stanza-connect "stanza" ())
(declare-function stanza-disconnect "stanza" ())
(declare-function stanza--update-account "stanza" (info))
(declare-function stanza--fetch "stanza" (account))

;;;; Options

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

;;;; Contacts and presence

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

(provide 'stanza-roster)
;;; stanza-roster.el ends here
