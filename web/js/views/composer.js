// The message box: Enter sends (not while the IME is composing), Shift+Enter is a new line,
// "@" opens an autocomplete of the room's members (a WAI-ARIA combobox with a listbox).
// Files (the 添付 button, or dropped on the room) are checked against 20 MiB, uploaded at once
// with a progress bar each, and go with the next message as its attachment_ids; "現場報告"
// opens the field report (photos + this phone's location).

import { api } from '../api.js';
import { h, toast, uid } from '../dom.js';
import { snippet } from '../format.js';
import { t } from '../i18n.js';
import { MAX_FILES, fileProblem, formatSize, uploadFile } from './attachments.js';

const MAX_ROWS = 6;
const MAX_SUGGESTIONS = 8;
const MENTION_AT_CARET = /(^|[^A-Za-z0-9._@-])@([^\s@]{0,64})$/;

export class Composer {
  constructor({ candidates, onSend, onTyping = () => {}, roomId = null, onFieldReport = null }) {
    this.candidates = candidates; // () => [{login_id, display_name, kana, id}]
    this.onSend = onSend; // (body, replyToId, {attachments}) — attachments: uploaded dicts
    this.onTyping = onTyping;
    this.roomId = roomId;
    this.uploads = []; // {key, file, loaded, total, state: uploading|done|failed, attachment, error, abort}
    this.replyTo = null;
    this.matches = [];
    this.active = -1;
    this.listId = uid('mentions');
    this.hintId = uid('hint');
    this.list = h('ul', { id: this.listId, class: 'mention-list', role: 'listbox', 'aria-label': t('composer.mention_list'), hidden: true });
    this.input = h('textarea', {
      class: 'composer-input', rows: 1, name: 'body', maxlength: 10000,
      'aria-label': t('composer.label'), placeholder: t('composer.placeholder'),
      role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false',
      'aria-controls': this.listId, 'aria-describedby': this.hintId,
      onkeydown: (e) => this.onKeyDown(e),
      oninput: () => { this.resize(); this.suggest(); this.onTyping(); },
      onclick: () => this.suggest(),
      // Closed a moment after the box loses focus, unless it has it again by then (a click on
      // the reply button blurs it and hands it back: the list opened since must stay).
      onblur: () => setTimeout(() => { if (document.activeElement !== this.input) this.close(); }, 150),
    });
    this.replyBar = h('div', { class: 'reply-bar', hidden: true });
    this.sendButton = h('button', { type: 'submit', class: 'btn primary send', 'aria-label': t('composer.send') }, t('composer.send'));
    this.fileInput = h('input', {
      type: 'file', multiple: true, class: 'file-input', id: uid('attach'), tabindex: '-1', 'aria-hidden': 'true',
      onchange: () => { this.addFiles([...this.fileInput.files]); this.fileInput.value = ''; },
    });
    this.attachButton = h('button', {
      type: 'button', class: 'btn icon attach', 'aria-label': t('composer.attach'), title: t('composer.attach_hint'),
      onclick: () => this.fileInput.click(),
    }, h('span', { class: 'attach-text', 'aria-hidden': 'true' }, t('composer.attach_short')));
    this.fieldButton = onFieldReport ? h('button', {
      type: 'button', class: 'btn icon field-report', title: t('field.open_hint'), onclick: () => onFieldReport(),
    }, t('field.open')) : null;
    this.filesEl = h('ul', { class: 'composer-files', 'aria-label': t('composer.files'), hidden: true });
    this.fileStatus = h('p', { class: 'composer-file-status', role: 'status', 'aria-live': 'polite' });
    this.el = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.replyBar,
      this.filesEl,
      this.fileStatus,
      h('div', { class: 'composer-row' },
        h('div', { class: 'composer-tools' }, this.attachButton, this.fileInput, this.fieldButton),
        h('div', { class: 'composer-field' }, this.list, this.input), this.sendButton),
      h('p', { id: this.hintId, class: 'composer-hint' }, t('composer.hint')));
  }

  // -- files --
  /** Check and start uploading these files (the button, a drop on the room). */
  addFiles(files) {
    const problems = [];
    for (const file of files) {
      const problem = fileProblem(file);
      if (problem) {
        problems.push(problem);
        continue;
      }
      if (this.uploads.length >= MAX_FILES) {
        problems.push(t('file.too_many', { n: MAX_FILES }));
        break;
      }
      this.startUpload(file);
    }
    // Kept until the next choice of files: later redraws (uploads ending) must not erase it.
    this.fileProblems = problems.join(' ');
    if (problems.length) toast(this.fileProblems, { error: true });
    this.renderFiles();
  }

  startUpload(file) {
    const item = { key: uid('up'), file, loaded: 0, total: file.size, state: 'uploading', attachment: null, error: null };
    const { promise, abort } = uploadFile(this.roomId, file, (loaded, total) => {
      item.loaded = loaded;
      item.total = total || file.size;
      this.updateProgress(item);
    });
    item.abort = abort;
    this.uploads.push(item);
    promise.then((attachment) => {
      item.state = 'done';
      item.attachment = attachment;
      item.loaded = item.total;
    }, (err) => {
      if (err.code === 'aborted') return;
      item.state = 'failed';
      item.error = err.text || t('error.unknown');
    }).finally(() => this.renderFiles());
  }

  removeUpload(item) {
    if (item.state === 'uploading') item.abort?.();
    // An upload that reached the server and was not sent is taken back there too.
    if (item.attachment?.id) api('DELETE', `/api/attachments/${item.attachment.id}`).catch(() => {});
    this.uploads = this.uploads.filter((x) => x !== item);
    this.renderFiles();
    this.focus();
  }

  /** An `attachment` event: show the scan state of files waiting to be sent. */
  onAttachment(a) {
    const item = this.uploads.find((x) => x.attachment?.id === a.id);
    if (item) {
      item.attachment = a;
      this.renderFiles();
    }
  }

  get uploading() {
    return this.uploads.some((x) => x.state === 'uploading');
  }

  updateProgress(item) {
    const bar = this.filesEl.querySelector(`[data-key="${item.key}"] progress`);
    if (bar) {
      bar.max = item.total || 1;
      bar.value = item.loaded;
      bar.textContent = `${Math.round((100 * item.loaded) / (item.total || 1))}%`;
    }
  }

  renderFiles() {
    this.filesEl.hidden = !this.uploads.length;
    this.filesEl.replaceChildren(...this.uploads.map((item) => {
      const scan = item.attachment?.state;
      let stateText = t('composer.uploading');
      if (item.state === 'failed') stateText = `${t('composer.upload_failed')} ${item.error || ''}`;
      else if (item.state === 'done') stateText = { scanning: t('file.scanning'), ready: t('file.ready'), blocked: t('file.blocked') }[scan] || t('composer.uploaded');
      return h('li', { class: `upload ${item.state}`, dataset: { key: item.key, state: item.state, scan: scan || '' } },
        h('span', { class: 'upload-name' }, item.file.name),
        h('span', { class: 'upload-size' }, formatSize(item.file.size)),
        item.state === 'uploading'
          ? h('progress', { class: 'upload-progress', max: String(item.total || 1), value: item.loaded, 'aria-label': t('composer.progress_label', { name: item.file.name }) })
          : null,
        h('span', { class: 'upload-state' }, stateText),
        h('button', {
          type: 'button', class: 'btn icon small', 'aria-label': t('composer.remove_file', { name: item.file.name }),
          onclick: () => this.removeUpload(item),
        }, '×'));
    }));
    this.sendButton.disabled = this.uploading;
    const problems = this.fileProblems || '';
    this.fileStatus.textContent = problems || (this.uploading ? t('composer.wait_upload') : '');
    this.fileStatus.classList.toggle('form-error', Boolean(problems));
  }

  focus() {
    this.input.focus();
  }

  resize() {
    const lines = this.input.value.split('\n').length;
    this.input.rows = Math.max(1, Math.min(MAX_ROWS, lines));
  }

  setReply(message, senderName) {
    this.replyTo = message;
    this.replyBar.replaceChildren();
    this.replyBar.hidden = !message;
    if (message) {
      this.replyBar.append(
        h('span', { class: 'reply-bar-text' }, t('composer.replying_to', { name: senderName }), ' ', h('q', null, snippet(message.body, 50))),
        h('button', { type: 'button', class: 'btn icon small', 'aria-label': t('composer.cancel_reply'), onclick: () => { this.setReply(null); this.focus(); } }, '×'));
    }
    this.focus();
  }

  submit() {
    const body = this.input.value;
    if (this.uploading) {
      this.fileStatus.textContent = t('composer.wait_upload');
      return;
    }
    const attachments = this.uploads.filter((x) => x.state === 'done').map((x) => x.attachment);
    if (!body.trim() && !attachments.length) return;
    this.onSend(body.trim() ? body : '', this.replyTo ? this.replyTo.id : null, { attachments });
    this.uploads = this.uploads.filter((x) => x.state !== 'done');
    this.fileProblems = '';
    this.renderFiles();
    this.input.value = '';
    this.resize();
    this.setReply(null);
    this.close();
  }

  onKeyDown(e) {
    const composing = e.isComposing || e.keyCode === 229;
    if (!this.list.hidden && !composing) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const step = e.key === 'ArrowDown' ? 1 : -1;
        this.highlight((this.active + step + this.matches.length) % this.matches.length);
        return;
      }
      if ((e.key === 'Enter' || e.key === 'Tab') && this.active >= 0) {
        e.preventDefault();
        this.pick(this.matches[this.active]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        this.close();
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !composing) {
      e.preventDefault();
      this.submit();
    }
  }

  query() {
    const caret = this.input.selectionStart;
    const m = this.input.value.slice(0, caret).match(MENTION_AT_CARET);
    return m ? { text: m[2], start: caret - m[2].length - 1, end: caret } : null;
  }

  suggest() {
    const q = this.query();
    if (!q) {
      this.close();
      return;
    }
    const needle = q.text.toLowerCase();
    const all = [{ login_id: 'all', display_name: t('composer.mention_all'), kana: '', id: 0 }, ...this.candidates()];
    this.matches = all.filter((c) => !needle || c.login_id.toLowerCase().startsWith(needle)
      || c.display_name.toLowerCase().includes(needle) || (c.kana || '').includes(needle)).slice(0, MAX_SUGGESTIONS);
    if (!this.matches.length) {
      this.close();
      return;
    }
    this.list.replaceChildren(...this.matches.map((c, i) => h('li', {
      id: `${this.listId}-${i}`, role: 'option', class: 'mention-option', 'aria-selected': 'false',
      onmousedown: (e) => { e.preventDefault(); this.pick(c); },
    }, h('span', { class: 'mention-name' }, c.display_name), ' ', h('span', { class: 'mention-login' }, `@${c.login_id}`))));
    this.list.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
    this.highlight(0);
  }

  highlight(index) {
    this.active = index;
    this.list.querySelectorAll('[role="option"]').forEach((li, i) => li.setAttribute('aria-selected', String(i === index)));
    this.input.setAttribute('aria-activedescendant', `${this.listId}-${index}`);
  }

  pick(candidate) {
    const q = this.query();
    if (!q || !candidate) return;
    const value = this.input.value;
    const insert = `@${candidate.login_id} `;
    this.input.value = value.slice(0, q.start) + insert + value.slice(q.end);
    const caret = q.start + insert.length;
    this.input.setSelectionRange(caret, caret);
    this.close();
    this.input.focus();
  }

  close() {
    this.list.hidden = true;
    this.matches = [];
    this.active = -1;
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  }
}
