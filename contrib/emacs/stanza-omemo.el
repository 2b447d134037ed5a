;;; stanza-omemo.el --- OMEMO commands of stanza.el  -*- lexical-binding: t; -*-

;; Author: the stanzad authors
;; Keywords: comm

;; This file is not part of GNU Emacs.

;;; Commentary:

;; End-to-end encryption (OMEMO, XEP-0384) is done by the daemon
;; (docs/encryption.md); these commands show and change what it does,
;; through the JSON ops `encryption', `omemo-devices', `omemo-trust' and
;; `omemo-distrust':
;;
;; - `stanza-encryption': OMEMO for the current conversation: always,
;;   never, or the account's setting (shown when nothing is chosen);
;; - `stanza-omemo-devices': a buffer with our device and the contact's,
;;   their trust and fingerprints (grouped hex, to compare with what the
;;   contact's client shows); `t', `d' on a line trust or distrust it;
;; - `stanza-omemo-trust', `stanza-omemo-distrust'.

;;; Code:

(require 'seq)
(require 'stanza)

(defvar-local stanza-omemo--account nil "The account of this device list.")
(defvar-local stanza-omemo--jid nil "The contact of this device list (\"\": ours only).")

(defun stanza-omemo--contact ()
  "The contact of the current conversation, or nil."
  (or (and (derived-mode-p 'stanza-chat-mode) (eq stanza-chat-kind 'chat) stanza-chat-peer)
      (and (derived-mode-p 'stanza-omemo-devices-mode) (stanza--nonempty stanza-omemo--jid))
      (plist-get (get-text-property (point) 'stanza-item) :jid)))

(defun stanza-omemo--read-jid (prompt &optional allow-empty)
  "The contact of the current buffer or line, else one read with PROMPT.
With ALLOW-EMPTY, an empty answer is \"\"."
  (or (stanza-omemo--contact)
      (let ((jid (string-trim (read-string prompt))))
        (cond ((and (equal jid "") allow-empty) "")
              ((string-match-p "\\`[^@/ ]+@[^@/ ]+\\'" jid) jid)
              (t (user-error "Not a bare JID: %s" jid))))))

;;;###autoload
(defun stanza-encryption (account jid mode)
  "Set OMEMO with JID on ACCOUNT to MODE: \"omemo\", \"off\" or \"default\".
MODE \"\" only shows it.  Interactively, the current conversation's."
  (interactive
   (let ((account (stanza--read-account)))
     (list account (stanza-omemo--read-jid "Encryption with (JID): ")
           (completing-read "Encryption (omemo, off, default; empty: show): "
                            '("omemo" "off" "default") nil t))))
  (unless (member mode '("" "omemo" "off" "default"))
    (user-error "Encryption: %s is not omemo, off or default" mode))
  (stanza--request
   "encryption" `((account . ,account) (jid . ,jid) ,@(unless (equal mode "") `((set . ,mode))))
   (lambda (reply)
     (if (not (eq (alist-get 'ok reply) t))
         (stanza--complain "encryption" reply)
       (let ((set (alist-get 'encryption reply)))
         (message "Stanza: encryption with %s: %s%s" jid set
                  (if (equal set "default") (format " (the account's: %s)" (alist-get 'default reply)) "")))))))

;;;; The device list

(defvar stanza-omemo-devices-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map "t" #'stanza-omemo-trust)
    (define-key map "d" #'stanza-omemo-distrust)
    (define-key map "g" #'stanza-omemo-refresh)
    map)
  "Keys of `stanza-omemo-devices-mode'.")

(define-derived-mode stanza-omemo-devices-mode special-mode "Stanza-OMEMO"
  "Our OMEMO device and a contact's, with their trust and fingerprints.
Compare each fingerprint with what the contact's client shows for its own
device, then trust (\\[stanza-omemo-trust]) or distrust (\\[stanza-omemo-distrust])
the one on this line.  \\[stanza-omemo-refresh] asks the daemon again.")

(defun stanza-omemo--buffer-name (account jid)
  "The name of the device list of JID on ACCOUNT."
  (format "*stanza-omemo: %s%s*" account (if (equal jid "") "" (concat " " jid))))

(defun stanza-omemo--insert (devices)
  "Insert one line per device of DEVICES (a vector of alists from `omemo-devices')."
  (seq-doseq (d devices)
    (let ((trust (alist-get 'trust d)))
      (insert (propertize
               (format "%-28s %10d  %-11s %s%s\n" (alist-get 'jid d) (alist-get 'device d)
                       trust (alist-get 'fingerprint d)
                       (if (alist-get 'listed d) "" "  (not listed)"))
               'stanza-omemo-device (list :jid (alist-get 'jid d) :device (alist-get 'device d)
                                          :trust trust)
               'face (cond ((member trust '("distrusted" "changed")) 'stanza-encryption-warning)
                           ((equal trust "undecided") 'warning)))))))

(defun stanza-omemo--show (account jid devices)
  "Show DEVICES of JID on ACCOUNT in their buffer; return it."
  (with-current-buffer (get-buffer-create (stanza-omemo--buffer-name account jid))
    (let ((inhibit-read-only t)
          (line (line-number-at-pos)))
      (stanza-omemo-devices-mode)
      (setq stanza-omemo--account account stanza-omemo--jid jid)
      (erase-buffer)
      (insert (format "OMEMO devices of %s%s  (t: trust, d: distrust, g: refresh)\n\n"
                      account (if (equal jid "") "" (concat " and " jid))))
      (stanza-omemo--insert devices)
      (goto-char (point-min))
      (forward-line (max 2 (1- line))))
    (current-buffer)))

;;;###autoload
(defun stanza-omemo-devices (account jid)
  "List our OMEMO devices and those of JID on ACCOUNT, with fingerprints.
JID \"\" lists ours only.  Interactively, the current conversation's."
  (interactive
   (let ((account (stanza--read-account)))
     (list account (stanza-omemo--read-jid "Devices of (JID, empty for ours): " t))))
  (stanza--request
   "omemo-devices" `((account . ,account) ,@(unless (equal jid "") `((jid . ,jid))))
   (lambda (reply)
     (if (not (eq (alist-get 'ok reply) t))
         (stanza--complain "omemo-devices" reply)
       (display-buffer (stanza-omemo--show account jid (alist-get 'devices reply)))))))

(defun stanza-omemo-refresh ()
  "Ask the daemon for this device list again."
  (interactive)
  (stanza-omemo-devices stanza-omemo--account stanza-omemo--jid))

(defun stanza-omemo--read-device (verb)
  "Account, JID and device id to VERB: from the device list's line, else read."
  (let ((here (get-text-property (point) 'stanza-omemo-device)))
    (if (and here (derived-mode-p 'stanza-omemo-devices-mode))
        (progn
          (when (equal (plist-get here :trust) "own") (user-error "That is our own device"))
          (list stanza-omemo--account (plist-get here :jid) (plist-get here :device)))
      (let* ((account (stanza--read-account))
             (jid (stanza-omemo--read-jid (format "%s a device of (JID): " verb)))
             (device (string-trim (read-string (format "%s device id of %s: " verb jid)))))
        (unless (string-match-p "\\`[0-9]+\\'" device)
          (user-error "Not a device id: %s" device))
        (list account jid (string-to-number device))))))

(defun stanza-omemo--set-trust (account jid device trusted)
  "Trust (TRUSTED) or distrust DEVICE of JID on ACCOUNT; refresh its list."
  (unless (and (integerp device) (< 0 device 2147483648))
    (user-error "Not a device id: %s" device))
  (let ((op (if trusted "omemo-trust" "omemo-distrust")))
    (stanza--request
     op `((account . ,account) (jid . ,jid) (device . ,device))
     (lambda (reply)
       (if (not (eq (alist-get 'ok reply) t))
           (stanza--complain op reply)
         (message "Stanza: device %d of %s is %s" device jid (if trusted "trusted" "distrusted"))
         (dolist (name (list (stanza-omemo--buffer-name account jid) (stanza-omemo--buffer-name account "")))
           (when (get-buffer name)
             (with-current-buffer name (stanza-omemo-refresh)))))))))

;;;###autoload
(defun stanza-omemo-trust (account jid device)
  "Trust the OMEMO DEVICE of JID on ACCOUNT (after comparing its fingerprint)."
  (interactive (stanza-omemo--read-device "Trust"))
  (stanza-omemo--set-trust account jid device t))

;;;###autoload
(defun stanza-omemo-distrust (account jid device)
  "Distrust the OMEMO DEVICE of JID on ACCOUNT: nothing is encrypted for it."
  (interactive (stanza-omemo--read-device "Distrust"))
  (stanza-omemo--set-trust account jid device nil))

(provide 'stanza-omemo)
;;; stanza-omemo.el ends here
