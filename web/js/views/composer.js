// The message box: Enter sends (not while the IME is composing), Shift+Enter is a new line,
// "@" opens an autocomplete of the room's members (a WAI-ARIA combobox with a listbox).

import { h, uid } from '../dom.js';
import { snippet } from '../format.js';
import { t } from '../i18n.js';

const MAX_ROWS = 6;
const MAX_SUGGESTIONS = 8;
const MENTION_AT_CARET = /(^|[^A-Za-z0-9._@-])@([^\s@]{0,64})$/;

export class Composer {
  constructor({ candidates, onSend, onTyping = () => {} }) {
    this.candidates = candidates; // () => [{login_id, display_name, kana, id}]
    this.onSend = onSend;
    this.onTyping = onTyping;
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
      onblur: () => setTimeout(() => this.close(), 150),
    });
    this.replyBar = h('div', { class: 'reply-bar', hidden: true });
    this.sendButton = h('button', { type: 'submit', class: 'btn primary send', 'aria-label': t('composer.send') }, t('composer.send'));
    this.el = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.replyBar,
      h('div', { class: 'composer-row' }, h('div', { class: 'composer-field' }, this.list, this.input), this.sendButton),
      h('p', { id: this.hintId, class: 'composer-hint' }, t('composer.hint')));
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
    if (!body.trim()) return;
    this.onSend(body, this.replyTo ? this.replyTo.id : null);
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
