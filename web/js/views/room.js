// One room: history paged by sequence as you scroll up, a divider at the first unread, own
// messages with read counts (who read / who has not on a click), replies, reactions, edit and
// recall, and messages that show at once (pending) and turn "sent" when the server acks them;
// attachments (./attachments.js) in the bubble. docs/web.md has the rest.

import { api, get } from '../api.js';
import { clear, h, openDialog, toast } from '../dom.js';
import { dayKey, dayOf, fullWhen, messageNodes, parseDate, snippet, timeOf } from '../format.js';
import { serverText, t } from '../i18n.js';
import { newer, renderAttachment, renderLocation, requestRelease, thumbnailFor } from './attachments.js';
import { Composer } from './composer.js';
import { FieldReport } from './fieldreport.js';
import { RoomSettings } from './roomsettings.js';

const PAGE = 50;
const CONTEXT_BEFORE_UNREAD = 20;
const NEAR_TOP_PX = 240;
const NEAR_BOTTOM_PX = 80;
const READ_DEBOUNCE_MS = 250;
// At most this many messages are in the DOM; paging further drops the far end (re-fetched by
// cursor when scrolled back), so a long history costs the same as a short one.
export const WINDOW = 400;
export const STAMPS = ['了解', 'ありがとう', '確認します', 'お疲れ様です', '👍', '🙏', '😄', '👀'];

export class RoomView {
  constructor(app, roomId, { jumpSeq = null } = {}) {
    this.app = app;
    this.roomId = roomId;
    this.jumpSeq = jumpSeq;
    this.msgs = [];
    this.byId = new Map();
    this.byClient = new Map();
    this.positions = new Map();
    this.members = [];
    this.roles = new Map(); // user id → room role, from member.added events (GET /api/rooms/{id} has only my_role)
    this.settings = null; // the open settings / members dialog
    this.room = null;
    this.hasBefore = false;
    this.hasAfter = false;
    this.firstUnread = null;
    this.loadingOlder = false;
    this.loadingNewer = false;
    this.myRead = 0;
    this.readTimer = null;
    this.destroyed = false;
    this.attState = new Map(); // attachment id → its latest dict (from events)
    this.thumbs = new Map(); // attachment id → its <img>, loaded once
    this.known = new Map(); // message id → seq, also for messages paged out of the window (quotes)
    this.build();
  }

  get me() {
    return this.app.me;
  }

  // -- layout --
  build() {
    const summary = this.app.rooms.get(this.roomId);
    this.titleId = `room-title-${this.roomId}`;
    this.titleEl = h('h1', { id: this.titleId, class: 'room-name' }, summary ? this.app.roomTitle(summary) : '');
    this.subEl = h('p', { class: 'room-sub' });
    this.settingsButton = h('button', {
      type: 'button', class: 'btn ghost small room-settings-button', 'aria-haspopup': 'dialog',
      onclick: () => this.showMembers(),
    }, h('span', { class: 'gear', 'aria-hidden': 'true' }, '⚙'), ' ', t('room.settings_button'));
    this.topEl = h('div', { class: 'history-top' });
    this.list = h('div', { class: 'messages' });
    this.history = h('div', {
      class: 'history', role: 'log', 'aria-labelledby': this.titleId, tabindex: '0',
      onscroll: () => this.onScroll(),
    }, this.topEl, this.list);
    this.newBelow = h('button', { type: 'button', class: 'btn primary new-below', hidden: true, onclick: () => (this.hasAfter ? this.jumpTo(null) : this.scrollToBottom(true)) }, t('room.new_below'));
    this.composer = new Composer({
      roomId: this.roomId,
      candidates: () => this.mentionCandidates(),
      onSend: (body, replyTo, extra) => this.send(body, replyTo, extra),
      onFieldReport: () => new FieldReport({
        roomId: this.roomId,
        onSend: (body, extra) => this.send(body, null, extra),
      }).open(),
    });
    this.dropHint = h('div', { class: 'drop-hint', 'aria-hidden': 'true' }, t('composer.drop_here'));
    this.el = h('section', {
      class: 'room', 'aria-labelledby': this.titleId,
      ondragover: (e) => this.onDragOver(e),
      ondragleave: (e) => { if (!this.el.contains(e.relatedTarget)) this.el.classList.remove('dragging'); },
      ondrop: (e) => this.onDrop(e),
    }, this.dropHint,
      h('header', { class: 'room-header' },
        h('a', { class: 'btn ghost back', href: '#/', 'aria-label': t('room.back') }, '‹'),
        h('div', { class: 'room-heading' }, this.titleEl, this.subEl),
        this.settingsButton),
      h('div', { class: 'history-wrap' }, this.history, this.newBelow),
      this.composer.el);
  }

  destroy() {
    this.destroyed = true;
    this.settings?.close();
    clearTimeout(this.readTimer);
  }

  onDragOver(e) {
    if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    this.el.classList.add('dragging');
  }

  onDrop(e) {
    this.el.classList.remove('dragging');
    const files = [...(e.dataTransfer?.files || [])];
    if (!files.length) return;
    e.preventDefault();
    this.composer.addFiles(files);
  }

  // -- loading --
  async load({ latest = false } = {}) {
    this.topEl.textContent = t('room.loading');
    try {
      const pagePath = this.jumpSeq
        ? `/api/rooms/${this.roomId}/messages?after=${Math.max(0, this.jumpSeq - 10)}&limit=${PAGE}`
        : latest ? `/api/rooms/${this.roomId}/messages?limit=${PAGE}`
          : `/api/rooms/${this.roomId}/messages?around=first_unread&limit=${PAGE}`;
      const [room, page] = await Promise.all([this.loadRoom(), get(pagePath)]);
      if (this.destroyed) return;
      this.room = room;
      this.myRead = page.read_seq;
      this.firstUnread = this.jumpSeq || latest ? null : page.first_unread_seq;
      this.hasBefore = page.has_before;
      this.hasAfter = page.has_after;
      this.addMessages(page.messages);
      if (this.firstUnread && this.hasBefore) {
        const older = await get(`/api/rooms/${this.roomId}/messages?before=${this.firstUnread}&limit=${CONTEXT_BEFORE_UNREAD}`);
        this.hasBefore = older.has_before;
        this.addMessages(older.messages);
      }
      for (const item of this.app.outbox.forRoom(this.roomId)) this.addPending(item);
    } catch (err) {
      if (this.destroyed) return;
      clear(this.topEl).append(h('span', { class: 'form-error', role: 'alert' }, err.text || t('error.unknown')));
      return;
    }
    this.renderAll();
    const divider = this.list.querySelector('.unread-divider');
    const target = this.jumpSeq ? this.list.querySelector(`[data-seq="${this.jumpSeq}"]`) : divider;
    if (target) {
      target.scrollIntoView({ block: this.jumpSeq ? 'center' : 'start' });
      if (this.jumpSeq) target.classList.add('flash');
    } else {
      this.scrollToBottom();
    }
    this.composer.focus();
    this.markReadSoon();
  }

  async loadRoom() {
    const room = await get(`/api/rooms/${this.roomId}`);
    this.members = room.members;
    this.positions = new Map(room.members.map((m) => [m.id, m.read_seq]));
    const summary = this.app.rooms.get(this.roomId);
    let title = summary ? this.app.roomTitle(summary) : room.name;
    if (!title && room.kind === 'direct') title = room.members.find((m) => m.id !== this.me.id)?.display_name;
    this.titleEl.textContent = title || t('room.untitled');
    this.subEl.textContent = room.kind === 'direct' ? t('room.direct') : t('room.member_count', { n: room.members.length });
    if (room.archived) this.subEl.append(' ', h('span', { class: 'archived-tag' }, t('room.archived_tag')));
    if (this.room) {
      this.room = room;
      this.settings?.refresh();
    }
    // Presence (庁内 / 在宅 / offline): the other person in a 1:1, everyone in the member list.
    const other = room.kind === 'direct' && room.members.find((m) => m.id !== this.me.id);
    if (other) this.subEl.append(' ', this.app.presence.badge(other.id));
    if (!this.destroyed) this.app.presence.watch(room.members.map((m) => m.id));
    return room;
  }

  async loadOlder() {
    if (this.loadingOlder || !this.hasBefore) return;
    const oldest = this.msgs.find((m) => m.seq);
    if (!oldest) return;
    this.loadingOlder = true;
    this.showBusy();
    this.topEl.textContent = t('room.loading');
    let paged = false;
    try {
      const page = await get(`/api/rooms/${this.roomId}/messages?before=${oldest.seq}&limit=${PAGE}`);
      if (this.destroyed || !oldest.el) return;
      // Keep the message that was on top where it was on the screen.
      const top = oldest.el.getBoundingClientRect().top;
      this.hasBefore = page.has_before;
      this.insertPage(page.messages);
      paged = true;
      this.trimBottom();
      this.history.scrollTop += oldest.el.getBoundingClientRect().top - top;
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
    } finally {
      this.loadingOlder = false;
      this.olderFailed = !paged; // the top offers to ask again
      this.showBusy();
      this.renderTop();
      if (paged) this.pageOn();
    }
  }

  async loadNewer() {
    if (this.loadingNewer || !this.hasAfter) return;
    const newest = [...this.msgs].reverse().find((m) => m.seq);
    if (!newest) return;
    this.loadingNewer = true;
    this.showBusy();
    let paged = false;
    try {
      const page = await get(`/api/rooms/${this.roomId}/messages?after=${newest.seq}&limit=${PAGE}`);
      if (this.destroyed || !newest.el) return;
      const top = newest.el.getBoundingClientRect().top;
      this.hasAfter = page.has_after;
      this.insertPage(page.messages);
      paged = true;
      this.trimTop();
      this.history.scrollTop += newest.el.getBoundingClientRect().top - top;
      if (!this.hasAfter) {
        // At the live end again: what still waits in the outbox shows below.
        for (const item of this.app.outbox.forRoom(this.roomId)) {
          const m = this.addPending(item);
          if (m) this.appendMessage(m);
        }
      }
      this.markReadSoon();
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
    } finally {
      this.loadingNewer = false;
      this.showBusy();
      if (paged) this.pageOn();
      else this.newBelow.hidden = !this.hasAfter; // it jumps to the newest messages
    }
  }

  /** After a page came in: a view still at the end it grew from asks for the next page now
   * (at an end a scroll event may never come, the view having nowhere to move). */
  pageOn() {
    requestAnimationFrame(() => {
      if (!this.destroyed) this.onScroll();
    });
  }

  /** The history says (aria-busy) while a page of it is on its way. */
  showBusy() {
    if (this.loadingOlder || this.loadingNewer) this.history.setAttribute('aria-busy', 'true');
    else this.history.removeAttribute('aria-busy');
  }

  /** Show another stretch: the newest messages (seq null) or those around `seq`. */
  async jumpTo(seq) {
    this.msgs = [];
    this.byId.clear();
    this.byClient.clear();
    this.list.replaceChildren();
    this.hasBefore = false;
    this.hasAfter = false;
    this.olderFailed = false;
    this.newBelow.hidden = true;
    this.jumpSeq = seq;
    await this.load({ latest: !seq });
  }

  /** Merge a page from the server; only its messages not shown yet get elements, put in one go. */
  insertPage(list) {
    const fresh = new Set();
    for (const raw of list) {
      const [m, isNew] = this.upsert(raw);
      if (isNew) fresh.add(m);
      else this.refresh(m);
    }
    this.sort();
    // A page is older or newer than everything shown, so its new messages are one run.
    const run = this.msgs.filter((m) => fresh.has(m));
    if (run.length) this.insertRun(run);
  }

  insertRun(run) {
    const i = this.msgs.indexOf(run[0]);
    let prev = this.msgs[i - 1] || null;
    const frag = document.createDocumentFragment();
    for (const m of run) {
      frag.append(...this.leading(m, prev));
      m.el = this.renderMessage(m);
      frag.append(m.el);
      prev = m;
    }
    const next = this.msgs[i + run.length];
    this.list.querySelector('.empty-room')?.remove();
    if (next?.el) {
      (next.dayEl || next.unreadEl || next.el).before(frag);
      this.redecorate(next, prev);
    } else {
      this.list.append(frag);
    }
  }

  /** Past the window: drop the newest messages (the view is no longer at the live end). */
  trimBottom() {
    if (this.msgs.length <= WINDOW) return;
    for (const m of this.msgs.splice(WINDOW)) this.forget(m);
    this.hasAfter = true;
  }

  /** Past the window: drop the oldest messages. */
  trimTop() {
    if (this.msgs.length <= WINDOW) return;
    for (const m of this.msgs.splice(0, this.msgs.length - WINDOW)) this.forget(m);
    this.hasBefore = true;
    if (this.msgs[0]) this.redecorate(this.msgs[0], null);
    this.renderTop();
  }

  /** Take a message out of the DOM and the lookups (events for it are ignored from now). */
  forget(m) {
    m.el?.remove();
    m.dayEl?.remove();
    m.unreadEl?.remove();
    m.el = null;
    m.dayEl = null;
    m.unreadEl = null;
    if (m.id && this.byId.get(m.id) === m) this.byId.delete(m.id);
    if (m.client_id && this.byClient.get(m.client_id) === m) this.byClient.delete(m.client_id);
  }

  // -- the model --
  normalise(m) {
    return { ...m, reactions: m.reactions || {}, state: 'sent', attachments: this.mergeAttachments(m.attachments) };
  }

  /** A message's files, each in the newest state seen (an event may beat the message). */
  mergeAttachments(list) {
    return (list || []).map((a) => {
      const best = newer(this.attState.get(a.id), a);
      this.attState.set(a.id, best);
      return best;
    });
  }

  addMessages(list) {
    for (const raw of list) this.upsert(raw);
    this.sort();
  }

  /** Insert or merge a server message; returns [message, isNew]. */
  upsert(raw) {
    let m = this.byId.get(raw.id);
    if (!m && raw.client_id && raw.sender_id === this.me.id) m = this.byClient.get(raw.client_id);
    if (m) {
      const reactions = raw.reactions || m.reactions;
      const attachments = this.mergeAttachments(raw.attachments || m.attachments);
      Object.assign(m, raw, { reactions, attachments, state: 'sent' });
      this.byId.set(m.id, m);
      if (m.client_id && this.app.outbox.get(m.client_id)) this.app.outbox.remove(m.client_id);
      return [m, false];
    }
    m = this.normalise(raw);
    this.msgs.push(m);
    this.byId.set(m.id, m);
    if (m.seq) this.known.set(m.id, m.seq);
    if (m.client_id && m.sender_id === this.me.id) {
      this.byClient.set(m.client_id, m);
      // Stored already (its ack was lost): it must not wait in the outbox to be shown again.
      if (this.app.outbox.get(m.client_id)) this.app.outbox.remove(m.client_id);
    }
    return [m, true];
  }

  addPending(item) {
    if (this.byClient.has(item.client_id)) return null;
    const m = {
      id: null, seq: null, sender_id: this.me.id, sender_name: this.me.display_name,
      client_id: item.client_id, body: item.body, recalled: false, reply_to_id: item.reply_to,
      mentions: [], mention_all: false, created_at: item.created_at, edited_at: null,
      reactions: {}, state: item.state, error: item.error,
      attachments: this.mergeAttachments(item.attachments), location: item.location || null,
    };
    this.msgs.push(m);
    this.byClient.set(item.client_id, m);
    return m;
  }

  sort() {
    const key = (m) => (m.seq ?? Number.MAX_SAFE_INTEGER);
    this.msgs.sort((a, b) => key(a) - key(b) || String(a.created_at).localeCompare(String(b.created_at)));
  }

  readCount(m) {
    let n = 0;
    for (const [uid, pos] of this.positions) if (uid !== m.sender_id && pos >= m.seq) n += 1;
    return n;
  }

  mentionCandidates() {
    return this.members.filter((m) => m.id !== this.me.id).map((m) => {
      const u = this.app.users.get(m.id);
      return { id: m.id, login_id: u?.login_id || '', display_name: m.display_name, kana: u?.kana || '' };
    }).filter((c) => c.login_id);
  }

  // -- rendering --
  renderTop() {
    if (this.hasBefore && this.olderFailed && !this.loadingOlder) {
      clear(this.topEl).append(h('button', { type: 'button', class: 'btn', onclick: () => this.loadOlder() }, t('room.load_again')));
      return;
    }
    this.topEl.textContent = this.hasBefore ? (this.loadingOlder ? t('room.loading') : '') : t('room.beginning');
  }

  renderAll() {
    this.renderTop();
    const nodes = [];
    let prev = null;
    for (const m of this.msgs) {
      nodes.push(...this.leading(m, prev));
      m.el = this.renderMessage(m);
      nodes.push(m.el);
      prev = m;
    }
    if (!this.msgs.length) nodes.push(h('p', { class: 'empty-room' }, t('room.empty')));
    this.list.replaceChildren(...nodes);
  }

  /** The separators before a message: a new day, the first unread (kept on the message). */
  leading(m, prev) {
    const nodes = [];
    const when = parseDate(m.created_at) || new Date();
    m.dayEl = null;
    m.unreadEl = null;
    if (!prev || dayKey(parseDate(prev.created_at) || new Date()) !== dayKey(when)) {
      m.dayEl = h('div', { class: 'day-divider', role: 'separator' }, h('span', null, dayOf(when)));
      nodes.push(m.dayEl);
    }
    if (this.firstUnread && m.seq && m.seq >= this.firstUnread && !(prev?.seq && prev.seq >= this.firstUnread)) {
      m.unreadEl = h('div', { class: 'unread-divider', role: 'separator', 'aria-label': t('room.unread_divider') }, h('span', null, t('room.unread_divider')));
      nodes.push(m.unreadEl);
    }
    return nodes;
  }

  /** Its predecessor changed (a page came in before it, or the ones before were dropped). */
  redecorate(m, prev) {
    if (!m.el) return;
    m.dayEl?.remove();
    m.unreadEl?.remove();
    m.el.before(...this.leading(m, prev));
  }

  /** Append a new message at the end (a new day gets its divider). */
  appendMessage(m) {
    const prev = this.msgs[this.msgs.indexOf(m) - 1];
    this.list.querySelector('.empty-room')?.remove();
    const nodes = this.leading(m, prev);
    m.el = this.renderMessage(m);
    this.list.append(...nodes, m.el);
  }

  refresh(m) {
    if (!m.el || !m.el.isConnected) return;
    const el = this.renderMessage(m);
    m.el.replaceWith(el);
    m.el = el;
  }

  senderName(m) {
    return m.sender_name || this.app.userName(m.sender_id);
  }

  renderMessage(m) {
    const mine = m.sender_id === this.me.id;
    const when = parseDate(m.created_at) || new Date();
    const el = h('article', {
      class: `msg${mine ? ' mine' : ''}${m.recalled ? ' recalled' : ''}`,
      dataset: { state: m.state, id: m.id ? String(m.id) : '', seq: m.seq ? String(m.seq) : '', clientId: m.client_id || '' },
      'aria-label': t('message.label', { name: this.senderName(m), time: timeOf(when) }),
    });
    if (!mine) el.append(h('div', { class: 'msg-sender' }, this.senderName(m)));
    const bubble = h('div', { class: 'msg-bubble' });
    if (m.reply_to_id) bubble.append(this.renderQuote(m.reply_to_id));
    if (m.editing) bubble.append(this.renderEditor(m));
    else if (m.recalled || m.body || !(m.attachments?.length || m.location)) bubble.append(this.renderBody(m));
    if (!m.recalled) {
      const loc = renderLocation(m.location);
      if (loc) bubble.append(loc);
      if (m.attachments?.length) bubble.append(this.renderAttachments(m));
    }
    const meta = h('div', { class: 'msg-meta' },
      h('time', { datetime: when.toISOString(), title: fullWhen(when) }, timeOf(when)),
      m.edited_at && !m.recalled ? h('span', { class: 'edited' }, t('message.edited')) : null,
      mine ? this.renderStatus(m) : null);
    el.append(h('div', { class: 'msg-line' }, bubble, meta));
    const reactions = this.renderReactions(m);
    if (reactions) el.append(reactions);
    if (m.state === 'sent' && !m.recalled && !m.editing) el.append(this.renderActions(m, mine));
    return el;
  }

  renderBody(m) {
    if (m.recalled) return h('p', { class: 'msg-body recalled-text' }, t('message.recalled'));
    const me = this.app.users.get(this.me.id);
    return h('p', { class: 'msg-body' }, messageNodes(m.body, {
      loginToName: (login) => this.app.usersByLogin.get(login)?.display_name,
      myLogin: me?.login_id,
    }));
  }

  renderAttachments(m) {
    const viewOnly = Boolean(this.app.restrictions?.view_only);
    return h('div', { class: 'attachments' }, m.attachments.map((a) => renderAttachment(a, {
      side: this.app.side,
      viewOnly,
      release: this.app.releaseFor?.(a.id) || null,
      outbound: this.app.outboundFor?.(a.id) || null,
      onRelease: (att) => this.askRelease(att),
      thumb: (att) => thumbnailFor(att, viewOnly, this.thumbs),
    })));
  }

  async askRelease(a) {
    const approval = await requestRelease(a);
    if (approval) this.app.rememberApproval?.(approval);
    this.onApproval(approval || { attachment_id: a.id });
  }

  onApprovalsLoaded() {
    for (const m of this.msgs) if (m.attachments?.length) this.refresh(m);
  }

  /** A release request of mine changed (asked, approved, rejected): redraw its file. */
  onApproval(approval) {
    for (const m of this.msgs) {
      if (m.attachments?.some((a) => a.id === approval.attachment_id)) this.refresh(m);
    }
  }

  renderQuote(id) {
    const q = this.byId.get(id);
    const text = q ? (q.recalled ? t('message.recalled') : snippet(q.body, 60)) : t('message.quote_unloaded');
    const name = q ? this.senderName(q) : '';
    return h('button', {
      type: 'button', class: 'quote', 'aria-label': t('message.quote_label', { name, text }),
      onclick: () => {
        const shown = this.byId.get(id); // now: it may have been paged in or out since
        if (shown?.el) {
          shown.el.scrollIntoView({ block: 'center', behavior: 'smooth' });
          shown.el.classList.add('flash');
          setTimeout(() => shown.el?.classList.remove('flash'), 1600);
        } else if (this.known.get(id)) {
          this.jumpTo(this.known.get(id)); // paged out of the window: load around it
        }
      },
    }, h('span', { class: 'quote-name' }, name), h('span', { class: 'quote-text' }, text));
  }

  renderStatus(m) {
    if (m.state === 'pending') {
      const offline = this.app.rt.state !== 'online';
      return h('span', { class: 'status pending' }, offline ? t('message.waiting') : t('message.sending'));
    }
    if (m.state === 'failed') {
      const reason = m.error ? serverText(m.error) : '';
      return h('span', { class: 'status failed', role: 'alert' }, t('message.failed'), reason ? ` (${reason})` : '',
        h('button', { type: 'button', class: 'btn small', onclick: () => this.retry(m) }, t('message.retry')),
        h('button', { type: 'button', class: 'btn small', onclick: () => this.discard(m) }, t('message.discard')));
    }
    if (m.recalled) return null;
    return h('button', {
      type: 'button', class: 'status read-label', onclick: () => this.showReaders(m),
      'aria-haspopup': 'dialog',
    }, this.readLabel(m));
  }

  readLabel(m) {
    const n = this.readCount(m);
    if (!n) return t('message.sent');
    return this.room?.kind === 'direct' ? t('message.read') : t('message.read_n', { n });
  }

  renderReactions(m) {
    const entries = Object.entries(m.reactions || {}).filter(([, users]) => users.length);
    if (!entries.length || m.recalled) return null;
    return h('div', { class: 'reactions' }, entries.map(([emoji, users]) => {
      const mineToo = users.includes(this.me.id);
      const names = users.map((id) => this.app.userName(id)).join('、');
      return h('button', {
        type: 'button', class: `reaction${mineToo ? ' mine' : ''}`, 'aria-pressed': String(mineToo),
        title: names, 'aria-label': t('message.reaction_label', { emoji, n: users.length, names }),
        onclick: () => this.react(m, emoji, !mineToo),
      }, h('span', { class: 'reaction-emoji' }, emoji), h('span', { class: 'reaction-count' }, String(users.length)));
    }));
  }

  renderActions(m, mine) {
    const picker = h('div', { class: 'stamp-picker', role: 'group', 'aria-label': t('message.stamps'), hidden: true },
      STAMPS.map((s) => h('button', { type: 'button', class: 'stamp', onclick: () => { picker.hidden = true; this.react(m, s, true); } }, s)));
    picker.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        picker.hidden = true;
        stampButton.focus();
      }
    });
    const stampButton = h('button', {
      type: 'button', class: 'act', 'aria-expanded': 'false', 'aria-label': t('message.react'),
      onclick: () => {
        picker.hidden = !picker.hidden;
        stampButton.setAttribute('aria-expanded', String(!picker.hidden));
        if (!picker.hidden) picker.querySelector('button')?.focus();
      },
    }, '☺');
    return h('div', { class: 'msg-actions', role: 'toolbar', 'aria-label': t('message.actions') },
      h('button', { type: 'button', class: 'act', onclick: () => this.composer.setReply(m, this.senderName(m)) }, t('message.reply')),
      stampButton,
      mine ? h('button', { type: 'button', class: 'act', onclick: () => this.startEdit(m) }, t('message.edit')) : null,
      mine ? h('button', { type: 'button', class: 'act danger', onclick: () => this.recall(m) }, t('message.recall')) : null,
      picker);
  }

  renderEditor(m) {
    const area = h('textarea', { class: 'edit-input', 'aria-label': t('message.edit_label'), rows: Math.min(6, m.body.split('\n').length + 1), maxlength: 10000 });
    area.value = m.draft ?? m.body;
    area.addEventListener('input', () => { m.draft = area.value; });
    const save = async () => {
      const body = area.value;
      if (!body.trim()) return;
      try {
        const res = await api('PATCH', `/api/messages/${m.id}`, { json: { body } });
        Object.assign(m, { body: res.body, edited_at: res.edited_at, mentions: res.mentions, mention_all: res.mention_all });
        this.stopEdit(m);
      } catch (err) {
        toast(err.text || t('error.unknown'), { error: true });
      }
    };
    area.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.stopEdit(m);
      } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        save();
      }
    });
    setTimeout(() => area.focus(), 0);
    return h('div', { class: 'editor' }, area,
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'btn primary small', onclick: save }, t('common.save')),
        h('button', { type: 'button', class: 'btn small', onclick: () => this.stopEdit(m) }, t('common.cancel'))));
  }

  // -- actions --
  async send(body, replyTo, extra = {}) {
    if (this.hasAfter) {
      // We are reading an older stretch: jump to the newest first so the new message lands
      // after everything else.
      await this.jumpTo(null);
    }
    const item = this.app.sendMessage(this.roomId, body, replyTo, extra);
    const m = this.addPending(item);
    if (m) {
      this.appendMessage(m);
      this.scrollToBottom();
    }
  }

  retry(m) {
    m.state = 'pending';
    m.error = null;
    this.refresh(m);
    this.app.retryMessage(m.client_id);
  }

  discard(m) {
    this.app.discardMessage(m.client_id);
    const i = this.msgs.indexOf(m);
    if (i < 0) return;
    this.msgs.splice(i, 1);
    this.forget(m);
    if (this.msgs[i]) this.redecorate(this.msgs[i], this.msgs[i - 1] || null);
  }

  async react(m, emoji, on) {
    try {
      await api(on ? 'PUT' : 'DELETE', `/api/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`);
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
    }
  }

  startEdit(m) {
    m.editing = true;
    m.draft = m.body;
    this.refresh(m);
  }

  stopEdit(m) {
    m.editing = false;
    m.draft = undefined;
    this.refresh(m);
    m.el?.querySelector('.act')?.focus();
  }

  async recall(m) {
    const { closed } = openDialog({
      title: t('message.recall_title'),
      body: h('p', null, t('message.recall_confirm')),
      actions: [
        { label: t('common.cancel'), value: 'cancel', autofocus: true },
        { label: t('message.recall'), value: 'recall', danger: true },
      ],
    });
    if ((await closed) !== 'recall') return;
    try {
      await api('POST', `/api/messages/${m.id}/recall`, { json: {} });
      Object.assign(m, { recalled: true, body: '', reactions: {} });
      this.refresh(m);
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
    }
  }

  async showReaders(m) {
    let data;
    try {
      data = await get(`/api/messages/${m.id}/readers`);
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
      return;
    }
    const list = (people) => (people.length
      ? h('ul', { class: 'people' }, people.map((p) => h('li', null, p.display_name)))
      : h('p', { class: 'hint' }, t('readers.none')));
    openDialog({
      title: t('readers.title'),
      className: 'readers-dialog',
      body: h('div', { class: 'readers' },
        h('section', { class: 'readers-read' }, h('h3', null, t('readers.read', { n: data.read.length })), list(data.read)),
        h('section', { class: 'readers-unread' }, h('h3', null, t('readers.unread', { n: data.unread.length })), list(data.unread))),
      actions: [{ label: t('common.close'), value: 'close', primary: true }],
    });
  }

  /** The settings and members dialog (./roomsettings.js); one at a time. */
  async showMembers() {
    if (this.settings) return;
    if (!this.room) {
      try {
        this.room = await this.loadRoom(); // pressed before the room finished loading
      } catch (err) {
        toast(err.text || t('error.unknown'), { error: true });
        return;
      }
    }
    if (this.settings || this.destroyed) return;
    this.settings = new RoomSettings(this).open();
  }

  /** Reload the room (members, name, archived) after a change made here. */
  async reloadRoom() {
    try {
      await this.loadRoom();
      this.updateReadLabels();
    } catch {
      // offline or no longer a member: the events say the rest
    }
  }

  // -- realtime --
  onEvent(frame) {
    const data = frame.data || {};
    switch (frame.event) {
      case 'message': {
        if (this.hasAfter) {
          // An older stretch is shown: paging down brings it in, or the button jumps there.
          this.newBelow.hidden = false;
          return;
        }
        const nearBottom = this.nearBottom();
        const existed = this.byId.get(data.message.id) || (data.message.sender_id === this.me.id && this.byClient.get(data.message.client_id));
        const [m] = this.upsert(data.message);
        if (existed) {
          this.sort();
          this.refresh(m);
          break;
        }
        const pendingTail = this.msgs.filter((x) => !x.seq);
        this.sort();
        if (pendingTail.length) this.renderAll();
        else this.appendMessage(m);
        if (nearBottom || m.sender_id === this.me.id) {
          if (this.msgs.length > WINDOW + PAGE) this.trimTop();
          this.scrollToBottom();
        } else {
          this.newBelow.hidden = false;
        }
        this.markReadSoon();
        break;
      }
      case 'message.edited': {
        const m = this.byId.get(data.message.id);
        if (m) {
          Object.assign(m, { body: data.message.body, edited_at: data.message.edited_at, mentions: data.message.mentions, mention_all: data.message.mention_all });
          if (!m.editing) this.refresh(m);
        }
        break;
      }
      case 'message.recalled': {
        const m = this.byId.get(data.message_id);
        if (m) {
          Object.assign(m, { recalled: true, body: '', reactions: {}, editing: false });
          this.refresh(m);
        }
        break;
      }
      case 'attachment': {
        const a = data.attachment;
        if (!a) break;
        const best = newer(this.attState.get(a.id), a);
        this.attState.set(a.id, best);
        this.composer.onAttachment(best);
        for (const m of this.msgs) {
          const i = (m.attachments || []).findIndex((x) => x.id === a.id);
          if (i >= 0) {
            m.attachments = m.attachments.map((x, j) => (j === i ? best : x));
            if (!m.editing) this.refresh(m);
          }
        }
        break;
      }
      case 'reaction': {
        const m = this.byId.get(data.message_id);
        if (m) {
          const users = new Set(m.reactions[data.emoji] || []);
          if (data.on) users.add(data.user_id);
          else users.delete(data.user_id);
          m.reactions = { ...m.reactions, [data.emoji]: [...users] };
          if (!users.size) delete m.reactions[data.emoji];
          this.refresh(m);
        }
        break;
      }
      case 'read':
        this.positions.set(data.user_id, Math.max(this.positions.get(data.user_id) || 0, data.read_seq));
        this.updateReadLabels();
        break;
      case 'member.removed':
        this.roles.delete(data.user_id);
        if (data.user_id === this.me.id) {
          if (!this.left) toast(t('room.removed')); // I left on purpose: the settings said so
          window.location.hash = '#/';
          return;
        }
        this.loadRoom().then(() => this.updateReadLabels()).catch(() => {});
        break;
      case 'member.added':
        if (data.user?.id) this.roles.set(data.user.id, data.role);
        this.loadRoom().then(() => this.updateReadLabels()).catch(() => {});
        break;
      case 'room.updated':
        this.loadRoom().then(() => this.updateReadLabels()).catch(() => {});
        break;
      default:
        break;
    }
  }

  onAck(ack) {
    if (ack.room_id !== this.roomId) return;
    const m = this.byClient.get(ack.client_id);
    if (!m) return;
    const other = this.byId.get(ack.message_id);
    if (other && other !== m) return; // the event came first and was merged already
    m.id = ack.message_id;
    m.seq = ack.seq;
    m.state = 'sent';
    this.byId.set(m.id, m);
    this.known.set(m.id, m.seq);
    this.positions.set(this.me.id, Math.max(this.positions.get(this.me.id) || 0, ack.seq));
    const order = this.msgs.map((x) => x);
    this.sort();
    if (order.some((x, i) => x !== this.msgs[i])) this.renderAll();
    else this.refresh(m);
  }

  onSendFailed(item) {
    if (item.room_id !== this.roomId) return;
    const m = this.byClient.get(item.client_id);
    if (!m) return;
    m.state = 'failed';
    m.error = item.error;
    this.refresh(m);
  }

  onConnection(state) {
    for (const m of this.msgs) if (m.state === 'pending') this.refresh(m);
    if (state === 'online') this.markReadSoon();
  }

  onVisibility() {
    this.markReadSoon();
  }

  onRoomsChanged() {
    const summary = this.app.rooms.get(this.roomId);
    if (summary && this.room?.kind === 'group') this.titleEl.textContent = this.app.roomTitle(summary);
  }

  updateReadLabels() {
    for (const m of this.msgs) {
      if (m.sender_id !== this.me.id || m.state !== 'sent' || m.recalled || !m.el) continue;
      const label = m.el.querySelector('.read-label');
      if (label) label.textContent = this.readLabel(m);
    }
  }

  // -- scrolling and reading --
  nearBottom() {
    const hist = this.history;
    return hist.scrollHeight - hist.scrollTop - hist.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom(focus = false) {
    this.history.scrollTop = this.history.scrollHeight;
    this.newBelow.hidden = true;
    if (focus) this.composer.focus();
  }

  onScroll() {
    if (this.history.scrollTop < NEAR_TOP_PX) this.loadOlder();
    if (this.nearBottom()) {
      this.newBelow.hidden = true;
      if (this.hasAfter) this.loadNewer();
      this.markReadSoon();
    }
  }

  isReading() {
    return document.visibilityState === 'visible' && !this.hasAfter && this.nearBottom();
  }

  markReadSoon() {
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => this.markRead(), READ_DEBOUNCE_MS);
  }

  markRead() {
    if (this.destroyed || !this.room || !this.isReading()) return;
    const newest = [...this.msgs].reverse().find((m) => m.seq);
    const seq = Math.max(newest?.seq || 0, this.app.rt.high.get(this.roomId) || 0);
    if (seq <= this.myRead) {
      this.app.markedRead(this.roomId, this.myRead);
      return;
    }
    const sent = this.app.rt.send({ type: 'read', id: `read-${this.roomId}-${seq}`, room_id: this.roomId, seq });
    if (!sent) return;
    this.myRead = seq;
    this.positions.set(this.me.id, Math.max(this.positions.get(this.me.id) || 0, seq));
    this.app.markedRead(this.roomId, seq);
  }
}
