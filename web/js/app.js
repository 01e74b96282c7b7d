// The signed-in application: the shell (top bar, room list, main pane), the routes, the
// websocket and the outbox.  Views live in ./views/ and get the App as their context.

import { api, get, setUnauthenticatedHandler } from './api.js';
import { forgetDevice } from './device.js';
import { clear, h, openDialog, toast } from './dom.js';
import { dayOf, parseDate, shortWhen, snippet } from './format.js';
import { lang, LANGS, serverText, setLang, t } from './i18n.js';
import * as notifier from './notify.js';
import { Outbox } from './outbox.js';
import { Presence } from './presence.js';
import { Realtime } from './realtime.js';
import { AdminView } from './views/admin.js';
import { DirectoryView } from './views/directory.js';
import { InboxView } from './views/inbox.js';
import { RoomView } from './views/room.js';
import { SearchView } from './views/search.js';

const ROOM_REFRESH_MS = 400;

export class App {
  constructor(root, me, { side = 'internet', restrictions = null, onSignedOut }) {
    this.root = root;
    this.me = me;
    this.side = side;
    this.restrictions = restrictions;
    this.onSignedOut = onSignedOut;
    this.rooms = new Map();
    this.users = new Map();
    this.usersByLogin = new Map();
    this.departments = [];
    this.view = null;
    this.filter = '';
    this.refreshTimer = null;
    this.inflight = new Set();
    this.outbox = new Outbox(me.id);
    this.rt = new Realtime();
    this.presence = new Presence();
    this.mine = new Map(); // attachment id → my latest release request
    this.outbound = new Map(); // attachment id → the outbound request for a file I sent
    this.toDecide = 0; // requests waiting for my decision (supervisors, administrators)
    this.approvalsTimer = null;
    this.showArchived = false; // the room list shows my archived rooms instead
    this.archived = new Map(); // room id → summary of a room archived for me or for everyone
    this.selecting = false; // the room list has a checkbox per room (bulk actions)
    this.selected = new Set();
  }

  /** Supervisors and administrators decide release and outbound requests. */
  get canDecide() {
    return this.me.role === 'admin' || this.me.role === 'supervisor';
  }

  get isAdmin() {
    return this.me.role === 'admin';
  }

  /** Administrators, and supervisors for their own departments' licenses. */
  get canAdminister() {
    return this.me.role === 'admin' || this.me.role === 'supervisor';
  }

  async start() {
    setUnauthenticatedHandler(() => this.signedOut(t('login.session_ended')));
    await Promise.all([this.loadRooms(), this.loadDirectory()]);
    for (const room of this.rooms.values()) this.rt.seed(room.id, room.last_seq);
    this.renderShell();
    this.rt.addEventListener('state', (e) => this.onState(e.detail));
    this.rt.addEventListener('event', (e) => this.onEvent(e.detail));
    this.rt.addEventListener('ack', (e) => this.onAck(e.detail));
    this.rt.addEventListener('servererror', (e) => this.onServerError(e.detail));
    this.rt.addEventListener('signedout', (e) => this.signedOut(this.endedNotice(e.detail)));
    this.rt.addEventListener('notice', (e) => this.onNotice(e.detail));
    this.rt.addEventListener('welcome', (e) => {
      if (e.detail.restrictions) {
        this.restrictions = e.detail.restrictions;
        this.renderRestrictions();
      }
    });
    this.onHash = () => this.route();
    window.addEventListener('hashchange', this.onHash);
    this.onVisible = () => this.view?.onVisibility?.();
    document.addEventListener('visibilitychange', this.onVisible);
    window.addEventListener('focus', this.onVisible);
    this.rt.start();
    this.route();
    this.loadApprovals();
  }

  // -- approvals (release / outbound requests) --
  async loadApprovals() {
    try {
      const data = await get('/api/approvals?state=all');
      this.mine = new Map();
      this.outbound = new Map();
      for (const a of [...data.mine].reverse()) (a.kind === 'release' ? this.mine : this.outbound).set(a.attachment_id, a);
      this.toDecide = data.to_decide.filter((a) => a.state === 'pending').length;
    } catch {
      return; // offline: the next notice or reconnect asks again
    }
    this.renderInboxBadge();
    if (this.view instanceof RoomView) this.view.onApprovalsLoaded();
  }

  loadApprovalsSoon() {
    clearTimeout(this.approvalsTimer);
    this.approvalsTimer = setTimeout(() => this.loadApprovals(), 300);
  }

  releaseFor(attachmentId) {
    return this.mine.get(attachmentId) || null;
  }

  outboundFor(attachmentId) {
    return this.outbound.get(attachmentId) || null;
  }

  rememberApproval(approval) {
    if (approval.requester_id !== this.me.id) return;
    (approval.kind === 'release' ? this.mine : this.outbound).set(approval.attachment_id, approval);
  }

  /** A personal notice: a request to decide, or a decision on mine. */
  onNotice(frame) {
    const approval = frame.approval;
    if (!approval) return;
    if (frame.notice === 'approval_decided') {
      this.rememberApproval(approval);
      let key = approval.state === 'approved' ? 'inbox.told_approved' : 'inbox.told_rejected';
      if (approval.kind === 'outbound') key = approval.state === 'approved' ? 'inbox.told_outbound_approved' : 'inbox.told_outbound_rejected';
      toast(t(key, { name: approval.filename || '' }));
      if (this.view instanceof RoomView) this.view.onApproval(approval);
    } else if (frame.notice === 'approval_requested') {
      toast(t('inbox.told_requested', { name: approval.filename || '' }));
    }
    this.loadApprovalsSoon();
    this.view?.onNotice?.(frame);
  }

  renderInboxBadge() {
    if (!this.inboxBadge) return;
    this.inboxBadge.textContent = this.toDecide > 99 ? '99+' : String(this.toDecide);
    this.inboxBadge.hidden = !this.toDecide;
    const plain = this.canDecide ? t('inbox.nav') : t('inbox.nav_mine');
    this.inboxLink.setAttribute('aria-label', this.toDecide ? t('inbox.nav_label_n', { n: this.toDecide }) : plain);
  }

  // -- data --
  async loadRooms() {
    const data = await get('/api/rooms');
    const fresh = new Map();
    for (const room of data.rooms) {
      const known = this.rooms.get(room.id);
      if (known?.last_seq > room.last_seq) { // live events went past this answer: keep theirs
        for (const k of ['last_seq', 'last_message', 'last_activity_at', 'unread', 'mentions']) room[k] = known[k];
        room.read_seq = Math.max(room.read_seq || 0, known.read_seq || 0);
      }
      fresh.set(room.id, room);
    }
    this.rooms = fresh;
  }

  /** Rooms hidden from the list: archived by me (no activity since) or for everyone. */
  async loadArchived() {
    const data = await get('/api/rooms?include_archived=true');
    this.archived = new Map(data.rooms.filter((r) => r.archived_by_me || r.archived).map((r) => [r.id, r]));
  }

  /** Personal archive / unarchive / leave of several rooms at once: all or nothing. */
  async bulk(action, roomIds) {
    const answer = await api('POST', '/api/rooms/bulk', { json: { action, room_ids: roomIds } });
    for (const id of roomIds) this.selected.delete(id);
    if (action === 'leave') for (const id of roomIds) this.forgetRoom(id, false);
    await this.loadRooms();
    for (const room of this.rooms.values()) this.rt.seed(room.id, room.last_seq);
    if (this.showArchived || action !== 'leave') await this.loadArchived().catch(() => {});
    this.renderRoomList();
    return answer;
  }

  /** I am no longer in this room (removed, left): it goes from the lists at once. */
  forgetRoom(roomId, render = true) {
    this.rooms.delete(roomId);
    this.archived.delete(roomId);
    this.selected.delete(roomId);
    if (render) this.renderRoomList();
  }

  async loadDirectory() {
    const [users, depts] = await Promise.all([get('/api/admin/users'), get('/api/admin/departments')]);
    this.users = new Map(users.users.map((u) => [u.id, u]));
    this.usersByLogin = new Map(users.users.map((u) => [u.login_id, u]));
    this.departments = depts.departments;
  }

  userName(id, fallback) {
    return this.users.get(id)?.display_name || fallback || t('user.unknown');
  }

  roomTitle(room) {
    if (!room) return '';
    return room.title || room.name || t('room.untitled');
  }

  scheduleRoomsRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(async () => {
      try {
        await this.loadRooms();
        if (this.showArchived) await this.loadArchived();
        for (const room of this.rooms.values()) this.rt.seed(room.id, room.last_seq);
        this.renderRoomList();
        this.view?.onRoomsChanged?.();
      } catch {
        // offline: the next event or reconnect refreshes again
      }
    }, ROOM_REFRESH_MS);
  }

  // -- realtime --
  onState(state) {
    this.shell.dataset.conn = state;
    const text = { offline: t('conn.offline'), connecting: t('conn.connecting'), syncing: t('conn.connecting'), online: '' }[state];
    this.connEl.textContent = text;
    this.connEl.hidden = !text;
    if (state === 'online') {
      this.inflight.clear();
      this.flushOutbox();
      this.scheduleRoomsRefresh();
      this.loadApprovalsSoon();
    }
    this.view?.onConnection?.(state);
  }

  /** Send what waits in the outbox (each with its own client_id; resends are harmless). */
  flushOutbox() {
    for (const item of this.outbox.pending()) {
      if (this.inflight.has(item.client_id)) continue;
      const frame = {
        type: 'send', id: item.client_id, room_id: item.room_id, client_id: item.client_id,
        body: item.body, reply_to: item.reply_to,
      };
      if (item.attachments?.length) frame.attachment_ids = item.attachments.map((a) => a.id);
      if (item.location) frame.location = item.location;
      const sent = this.rt.send(frame);
      if (!sent) break;
      this.inflight.add(item.client_id);
    }
  }

  /** extra: {attachments (uploaded dicts), location} — kept with the message in the outbox. */
  sendMessage(roomId, body, replyTo, extra = {}) {
    const item = this.outbox.add({
      room_id: roomId, body, reply_to: replyTo,
      attachments: extra.attachments || [], location: extra.location || null,
    });
    this.flushOutbox();
    return item;
  }

  retryMessage(clientId) {
    this.outbox.retry(clientId);
    this.inflight.delete(clientId);
    this.flushOutbox();
  }

  discardMessage(clientId) {
    this.outbox.remove(clientId);
  }

  onAck(ack) {
    if (!ack.client_id) return;
    this.inflight.delete(ack.client_id);
    this.outbox.remove(ack.client_id);
    this.view?.onAck?.(ack);
  }

  onServerError(frame) {
    const item = frame.ref ? this.outbox.get(frame.ref) : null;
    if (!item) return;
    this.inflight.delete(item.client_id);
    this.outbox.fail(item.client_id, { message: frame.message, message_en: frame.message_en, code: frame.code });
    this.view?.onSendFailed?.(item);
  }

  onEvent(frame) {
    const room = this.rooms.get(frame.room_id);
    const data = frame.data || {};
    if (!room) {
      if (frame.event === 'member.removed' && data.user_id === this.me.id) this.forgetRoom(frame.room_id);
      this.scheduleRoomsRefresh();
    } else {
      room.last_seq = Math.max(room.last_seq || 0, frame.seq);
      switch (frame.event) {
        case 'message': {
          const msg = data.message;
          room.last_message = msg;
          room.last_activity_at = frame.at || room.last_activity_at;
          if (msg.sender_id !== this.me.id) {
            const reading = this.view instanceof RoomView && this.view.roomId === room.id && this.view.isReading();
            if (!reading) {
              room.unread += 1;
              if (this.mentionsMe(msg)) room.mentions += 1;
            }
            this.maybeNotify(room, msg, reading);
          }
          break;
        }
        case 'message.edited':
          if (room.last_message?.id === data.message.id) room.last_message = data.message;
          break;
        case 'message.recalled':
          if (room.last_message?.id === data.message_id) {
            room.last_message = { ...room.last_message, recalled: true, body: '' };
          }
          break;
        case 'read':
          if (data.user_id === this.me.id) {
            room.read_seq = Math.max(room.read_seq || 0, data.read_seq);
            this.scheduleRoomsRefresh();
          }
          break;
        case 'reaction':
        case 'attachment':
          break;
        case 'member.removed':
          if (data.user_id === this.me.id) this.forgetRoom(room.id, false);
          else this.scheduleRoomsRefresh();
          break;
        default:
          this.scheduleRoomsRefresh();
      }
      this.renderRoomList();
    }
    if (this.view?.roomId === frame.room_id) this.view.onEvent(frame);
  }

  mentionsMe(msg) {
    return Boolean(msg.mention_all) || (msg.mentions || []).includes(this.me.id);
  }

  /** Mark a room read locally (the view sends the read frame). */
  markedRead(roomId, seq) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.read_seq = Math.max(room.read_seq || 0, seq);
    if (room.read_seq >= room.last_seq) {
      room.unread = 0;
      room.mentions = 0;
    }
    this.renderRoomList();
  }

  maybeNotify(room, msg, reading) {
    if (reading && document.visibilityState === 'visible' && document.hasFocus()) return;
    if (room.kind !== 'direct' && !this.mentionsMe(msg)) return;
    const sender = msg.sender_name || this.userName(msg.sender_id);
    const title = room.kind === 'direct' ? sender : `${this.roomTitle(room)} — ${sender}`;
    notifier.notify({
      title, body: snippet(msg.body, 120), tag: `room-${room.id}`,
      onClick: () => { window.location.hash = `#/room/${room.id}`; },
    });
  }

  /** Why the server ended this session (websocket close 4001 / 4003), for the sign-in screen. */
  endedNotice({ code, reason, error } = {}) {
    if (reason === 'device_revoked') forgetDevice();
    if (['license_revoked', 'device_revoked', 'policy_changed'].includes(reason)) {
      return t(`ended.${reason}`, { side: t(`side.${this.side}`) });
    }
    if (code === 4001 && error && (error.message || error.message_en)) return serverText(error);
    return t('login.session_ended');
  }

  // -- shell --
  renderShell() {
    const langSelect = h('select', {
      class: 'lang-select', 'aria-label': t('settings.language'),
      onchange: (e) => setLang(e.target.value),
    }, LANGS.map((code) => h('option', { value: code, selected: code === lang() }, t(`lang.${code}`))));
    this.connEl = h('div', { class: 'conn', role: 'status', 'aria-live': 'polite', hidden: true });
    this.searchInput = h('input', {
      type: 'search', class: 'search-input', name: 'q', placeholder: t('rooms.search_placeholder'),
      'aria-label': t('rooms.search_label'), autocomplete: 'off',
      oninput: (e) => { this.filter = e.target.value.trim(); this.renderRoomList(); },
    });
    const searchForm = h('form', {
      role: 'search', class: 'search-form',
      onsubmit: (e) => {
        e.preventDefault();
        const q = this.searchInput.value.trim();
        if (q) window.location.hash = `#/search?q=${encodeURIComponent(q)}`;
      },
    }, this.searchInput, h('button', { type: 'submit', class: 'btn icon', title: t('rooms.search_messages') }, t('rooms.search_button')));
    this.roomList = h('ul', { class: 'room-list', 'aria-label': t('rooms.list') });
    this.offerEl = h('div', { class: 'notify-offer-slot' });
    this.main = h('main', { class: 'main', id: 'main', tabindex: '-1' });
    this.inboxBadge = h('span', { class: 'badge unread inbox-badge', 'aria-hidden': 'true', hidden: true });
    this.inboxLink = h('a', { class: 'btn ghost inbox-link', href: '#/inbox', id: 'inbox-link' },
      h('span', { class: 'inbox-text' }, this.canDecide ? t('inbox.nav') : t('inbox.nav_mine')), this.inboxBadge);
    this.noticeEl = h('div', { class: 'restrictions', id: 'restrictions', role: 'note', 'aria-label': t('restrictions.label'), hidden: true });
    this.shell = h('div', { class: 'shell', dataset: { conn: 'connecting' } },
      h('header', { class: 'topbar' },
        h('a', { class: 'brand', href: '#/' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '⌒'), h('span', { class: 'brand-name' }, t('app.name'))),
        h('span', { class: `side-badge top side-${this.side}`, id: 'top-side', title: t('side.connected', { side: t(`side.${this.side}`) }) },
          h('span', { class: 'side-long' }, t(`side.${this.side}`)),
          h('span', { class: 'side-short' }, t(`side.${this.side}_short`))),
        this.connEl,
        h('nav', { class: 'top-actions', 'aria-label': t('nav.label') },
          this.inboxLink,
          this.canAdminister ? h('a', { class: 'btn ghost', href: '#/admin' }, t('nav.admin')) : null,
          langSelect,
          h('button', { type: 'button', class: 'btn ghost me-button', onclick: () => this.openSettings(), 'aria-label': t('settings.open_for', { name: this.me.display_name }) },
            h('span', { class: 'me-name' }, this.me.display_name), h('span', { class: 'gear', 'aria-hidden': 'true' }, '⚙')),
          h('button', { type: 'button', class: 'btn ghost signout', onclick: () => this.signOut() }, t('nav.sign_out')))),
      this.noticeEl,
      h('aside', { class: 'sidebar', 'aria-label': t('rooms.sidebar') },
        h('div', { class: 'sidebar-tools' }, searchForm,
          h('a', { class: 'btn primary new-chat', href: '#/new' }, t('rooms.new_chat'))),
        this.offerEl,
        this.renderListTools(),
        this.bulkBar,
        this.roomList),
      this.main);
    clear(this.root);
    this.root.className = '';
    this.root.append(this.shell);
    this.renderOffer();
    this.renderRestrictions();
    this.renderRoomList();
    this.renderInboxBadge();
  }

  /** What the organisation's policy means for this device, in plain words. */
  restrictionLines() {
    const r = this.restrictions || {};
    const lines = [];
    if (r.view_only) lines.push(t('restrictions.view_only'));
    if (r.no_screenshots) lines.push(t('restrictions.no_screenshots'));
    return lines;
  }

  renderRestrictions() {
    if (!this.noticeEl) return;
    const lines = this.restrictionLines();
    this.noticeEl.replaceChildren(...lines.map((line) => h('p', null, line)));
    this.noticeEl.hidden = !lines.length;
  }

  renderOffer() {
    clear(this.offerEl);
    if (!notifier.shouldOffer()) return;
    const box = h('div', { class: 'notify-offer', role: 'region', 'aria-label': t('notify.offer_label') },
      h('p', null, t('notify.offer')),
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'btn primary small', onclick: async () => { await notifier.requestPermission(); this.renderOffer(); } }, t('notify.enable')),
        h('button', { type: 'button', class: 'btn small', onclick: () => { notifier.dismissOffer(); this.renderOffer(); } }, t('notify.later'))));
    this.offerEl.append(box);
  }

  sortedRooms(source = this.rooms) {
    const at = (r) => parseDate(r.last_message?.created_at || r.last_activity_at || r.created_at)?.getTime() || 0;
    return [...source.values()].sort((a, b) => at(b) - at(a) || b.id - a.id);
  }

  // -- room list: archived view and bulk actions --
  renderListTools() {
    this.listHeading = h('h2', { class: 'list-heading', id: 'room-list-heading' });
    this.archivedToggle = h('button', {
      type: 'button', class: 'btn ghost small', id: 'archived-toggle',
      onclick: () => this.toggleArchived(),
    }, t('rooms.archived_view'));
    this.selectToggle = h('button', {
      type: 'button', class: 'btn ghost small', id: 'select-toggle', 'aria-expanded': 'false', 'aria-controls': 'bulk-bar',
      onclick: () => this.toggleSelecting(),
    }, t('rooms.select'));
    this.bulkCount = h('span', { class: 'bulk-count', role: 'status', 'aria-live': 'polite' });
    this.bulkError = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const button = (action, label, danger = false) => h('button', {
      type: 'button', class: `btn small${danger ? ' danger' : ''}`, dataset: { action },
      onclick: () => this.runBulk(action),
    }, label);
    this.bulkActions = {
      archive: button('archive', t('rooms.bulk_archive')),
      unarchive: button('unarchive', t('rooms.bulk_unarchive')),
      leave: button('leave', t('rooms.bulk_leave'), true),
    };
    this.bulkButtons = h('div', { class: 'row bulk-buttons' }, Object.values(this.bulkActions));
    this.bulkBar = h('div', { class: 'bulk-bar', id: 'bulk-bar', role: 'group', 'aria-label': t('rooms.bulk_label'), hidden: true },
      this.bulkCount, this.bulkButtons, this.bulkError);
    return h('div', { class: 'list-tools' }, this.listHeading, h('div', { class: 'row list-toggles' }, this.archivedToggle, this.selectToggle));
  }

  async toggleArchived() {
    this.showArchived = !this.showArchived;
    this.selected.clear();
    this.bulkError.hidden = true;
    if (this.showArchived) {
      try {
        await this.loadArchived();
      } catch (err) {
        toast(err.text || t('error.unknown'), { error: true });
      }
    }
    this.renderRoomList();
    this.archivedToggle.focus();
  }

  toggleSelecting() {
    this.selecting = !this.selecting;
    this.selected.clear();
    this.bulkError.hidden = true;
    this.renderRoomList();
  }

  renderBulkBar() {
    if (!this.bulkBar) return;
    this.listHeading.textContent = this.showArchived ? t('rooms.archived_heading') : t('rooms.list');
    this.archivedToggle.classList.toggle('on', this.showArchived);
    this.archivedToggle.textContent = this.showArchived ? t('rooms.back_to_list') : t('rooms.archived_view');
    this.selectToggle.setAttribute('aria-expanded', String(this.selecting));
    this.selectToggle.classList.toggle('on', this.selecting);
    this.selectToggle.textContent = this.selecting ? t('rooms.select_done') : t('rooms.select');
    this.roomList.setAttribute('aria-label', this.showArchived ? t('rooms.archived_heading') : t('rooms.list'));
    this.shell?.classList.toggle('selecting', this.selecting);
    this.bulkBar.hidden = !this.selecting;
    if (!this.selecting) return;
    const n = this.selected.size;
    this.bulkCount.textContent = t('rooms.selected_n', { n });
    this.bulkActions.archive.hidden = this.showArchived;
    this.bulkActions.unarchive.hidden = !this.showArchived;
    // aria-disabled rather than disabled: a button keeps its focus when the choice empties
    for (const b of Object.values(this.bulkActions)) b.setAttribute('aria-disabled', String(!n));
  }

  async runBulk(action) {
    const ids = [...this.selected];
    if (!ids.length) {
      this.bulkError.textContent = t('rooms.select_first');
      this.bulkError.hidden = false;
      return;
    }
    const source = this.showArchived ? this.archived : this.rooms;
    if (action === 'leave') {
      const { closed } = openDialog({
        title: t('rooms.bulk_leave_title'),
        body: h('div', null, h('p', null, t('rooms.bulk_leave_confirm', { n: ids.length })),
          h('ul', { class: 'people' }, ids.map((id) => h('li', null, this.roomTitle(source.get(id)))))),
        actions: [{ label: t('common.cancel'), value: 'cancel', autofocus: true }, { label: t('rooms.bulk_leave'), value: 'yes', danger: true }],
      });
      if ((await closed) !== 'yes') return;
    }
    this.bulkError.hidden = true;
    try {
      await this.bulk(action, ids);
    } catch (err) {
      const which = err.details?.room_id ? (source.get(err.details.room_id) || this.rooms.get(err.details.room_id) || this.archived.get(err.details.room_id)) : null;
      this.bulkError.textContent = which ? t('rooms.bulk_failed_room', { name: this.roomTitle(which), text: err.text }) : err.text;
      this.bulkError.hidden = false;
      return;
    }
    const key = { archive: 'rooms.archived_n', unarchive: 'rooms.unarchived_n', leave: 'rooms.left_n' }[action];
    toast(t(key, { n: ids.length }));
    this.selectToggle.focus();
    if (action === 'leave' && this.view instanceof RoomView && ids.includes(this.view.roomId)) window.location.hash = '#/';
  }

  renderRoomList() {
    if (!this.roomList) return;
    const focusedId = document.activeElement?.dataset?.roomId;
    const focusedPick = document.activeElement?.dataset?.pickRoom;
    const currentId = this.view instanceof RoomView ? this.view.roomId : null;
    const needle = this.filter.toLowerCase();
    const source = this.showArchived ? this.archived : this.rooms;
    for (const id of [...this.selected]) if (!source.has(id)) this.selected.delete(id);
    const items = this.sortedRooms(source).filter((r) => !needle || this.roomTitle(r).toLowerCase().includes(needle));
    clear(this.roomList);
    this.renderBulkBar();
    if (!items.length) {
      let empty = needle ? t('rooms.no_match') : t('rooms.none');
      if (this.showArchived && !needle) empty = t('rooms.archived_none');
      this.roomList.append(h('li', { class: 'empty' }, empty));
    }
    for (const room of items) {
      const last = room.last_message;
      let preview = '';
      if (last) {
        let body = last.recalled ? t('message.recalled') : snippet(last.body, 80);
        if (!body && last.attachments?.length) body = t('rooms.preview_files', { names: last.attachments.map((a) => a.filename).join('、') });
        if (!body && last.location) body = t('rooms.preview_location');
        const who = last.sender_id === this.me.id ? t('rooms.you') : (room.kind === 'direct' ? '' : this.userName(last.sender_id, last.sender_name));
        preview = who ? `${who}: ${body}` : body;
      }
      const when = parseDate(last?.created_at || room.last_activity_at);
      const labelParts = [this.roomTitle(room)];
      if (this.showArchived) labelParts.push(room.archived ? t('rooms.archived_for_all') : t('rooms.archived_by_me'));
      if (room.unread) labelParts.push(t('rooms.unread_label', { n: room.unread }));
      if (room.mentions) labelParts.push(t('rooms.mentions_label', { n: room.mentions }));
      const link = h('a', {
        href: `#/room/${room.id}`, class: `room-item${room.unread ? ' has-unread' : ''}`,
        'aria-current': room.id === currentId ? 'page' : undefined,
        'aria-label': labelParts.join('、'),
        dataset: { roomId: String(room.id) },
      },
      h('span', { class: 'room-avatar', 'aria-hidden': 'true' }, room.kind === 'direct' ? this.roomTitle(room).slice(0, 1) : '#'),
      h('span', { class: 'room-main' },
        h('span', { class: 'room-top' },
          h('span', { class: 'room-title' }, this.roomTitle(room)),
          h('time', { class: 'room-when', datetime: when ? when.toISOString() : undefined, title: when ? dayOf(when) : undefined }, when ? shortWhen(when) : '')),
        h('span', { class: 'room-bottom' },
          h('span', { class: 'room-preview' }, preview),
          room.mentions ? h('span', { class: 'badge mention', 'aria-hidden': 'true' }, `@${room.mentions}`) : null,
          room.unread ? h('span', { class: 'badge unread', 'aria-hidden': 'true' }, room.unread > 999 ? '999+' : String(room.unread)) : null,
          this.showArchived ? h('span', { class: 'archived-tag', 'aria-hidden': 'true' }, room.archived ? t('rooms.archived_for_all_short') : t('rooms.archived_by_me_short')) : null)));
      const pick = this.selecting ? h('input', {
        type: 'checkbox', class: 'room-pick', checked: this.selected.has(room.id),
        'aria-label': t('rooms.select_room', { name: this.roomTitle(room) }),
        dataset: { pickRoom: String(room.id) },
        onchange: (e) => {
          if (e.target.checked) this.selected.add(room.id);
          else this.selected.delete(room.id);
          this.renderBulkBar();
        },
      }) : null;
      this.roomList.append(h('li', { class: pick ? 'pickable' : undefined }, pick, link));
    }
    if (focusedId) this.roomList.querySelector(`[data-room-id="${CSS.escape(focusedId)}"]`)?.focus();
    if (focusedPick) this.roomList.querySelector(`[data-pick-room="${CSS.escape(focusedPick)}"]`)?.focus();
  }

  // -- routes --
  route() {
    const hash = window.location.hash || '#/';
    const [path, query = ''] = hash.slice(1).split('?');
    const params = new URLSearchParams(query);
    const parts = path.split('/').filter(Boolean);
    this.view?.destroy?.();
    this.view = null;
    this.presence.watch([]);
    let view = null;
    if (parts[0] === 'room' && /^\d+$/.test(parts[1] || '')) {
      view = new RoomView(this, Number(parts[1]), { jumpSeq: Number(params.get('seq')) || null });
    } else if (parts[0] === 'new') {
      view = new DirectoryView(this);
    } else if (parts[0] === 'admin' && this.canAdminister) {
      view = new AdminView(this, parts[1] || '');
    } else if (parts[0] === 'inbox') {
      view = new InboxView(this);
    } else if (parts[0] === 'search') {
      view = new SearchView(this, params.get('q') || '');
    }
    this.view = view;
    this.shell.classList.toggle('has-main', Boolean(view));
    clear(this.main);
    if (view) {
      this.main.append(view.el);
      view.load?.();
    } else {
      this.main.append(h('div', { class: 'placeholder' },
        h('p', { class: 'placeholder-title' }, t('main.pick_room')),
        h('p', null, t('main.pick_room_hint'))));
    }
    this.renderRoomList();
    this.inboxLink?.setAttribute('aria-current', parts[0] === 'inbox' ? 'page' : 'false');
  }

  // -- settings and sign-out --
  openSettings() {
    const perm = notifier.permission();
    const permText = { granted: t('notify.state_granted'), denied: t('notify.state_denied'), default: t('notify.state_default'), unsupported: t('notify.state_unsupported') }[perm];
    const sound = h('input', { type: 'checkbox', id: 'settings-sound', checked: notifier.soundOn(), onchange: (e) => notifier.setSound(e.target.checked) });
    const langSel = h('select', { id: 'settings-lang', onchange: (e) => setLang(e.target.value) },
      LANGS.map((code) => h('option', { value: code, selected: code === lang() }, t(`lang.${code}`))));
    const body = h('div', { class: 'settings' },
      h('p', { class: 'settings-who' }, `${this.me.display_name} (${this.me.login_id})`),
      h('p', { class: 'hint' }, t('side.connected', { side: t(`side.${this.side}`) })),
      this.restrictionLines().map((line) => h('p', { class: 'hint' }, line)),
      h('div', { class: 'field' }, h('label', { for: 'settings-lang' }, t('settings.language')), langSel),
      h('div', { class: 'field' }, h('span', { class: 'label' }, t('notify.title')), h('p', { class: 'hint' }, permText),
        perm === 'default' ? h('button', { type: 'button', class: 'btn small', onclick: async () => { await notifier.requestPermission(); this.renderOffer(); } }, t('notify.enable')) : null),
      h('div', { class: 'field checkbox' }, sound, h('label', { for: 'settings-sound' }, t('notify.sound'))),
      h('button', { type: 'button', class: 'btn danger', onclick: () => this.signOut() }, t('nav.sign_out')));
    openDialog({ title: t('settings.title'), body, actions: [{ label: t('common.close'), value: 'close', primary: true }] });
  }

  async signOut() {
    try {
      await api('POST', '/api/auth/logout', { json: {} });
    } catch {
      // signed out already, or offline: the cookie goes with the next sign-in
    }
    this.signedOut();
  }

  signedOut(notice = '') {
    if (this.ended) return;
    this.ended = true;
    this.rt.stop();
    this.presence.stop();
    this.view?.destroy?.();
    window.removeEventListener('hashchange', this.onHash);
    document.removeEventListener('visibilitychange', this.onVisible);
    window.removeEventListener('focus', this.onVisible);
    this.onSignedOut(notice);
  }
}

