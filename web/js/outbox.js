// Messages written but not yet acknowledged by the server.  Each carries the client_id it was
// first sent with; resending the same client_id after a reconnect (or a reload: the outbox is
// kept in localStorage) never stores the message twice.

const PREFIX = 'kakehashi.outbox.';

export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `w${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class Outbox {
  constructor(userId) {
    this.key = PREFIX + userId;
    this.items = [];
    try {
      const saved = JSON.parse(localStorage.getItem(this.key) || '[]');
      if (Array.isArray(saved)) this.items = saved.filter((i) => i && i.client_id && i.room_id);
    } catch {
      this.items = [];
    }
  }

  save() {
    if (this.items.length) localStorage.setItem(this.key, JSON.stringify(this.items));
    else localStorage.removeItem(this.key);
  }

  /** attachments: the uploaded files' dicts (their ids are sent); location: a field report's. */
  add({ room_id, body, reply_to = null, attachments = [], location = null }) {
    const item = {
      client_id: newClientId(), room_id, body, reply_to, attachments, location,
      created_at: new Date().toISOString(), state: 'pending', error: null,
    };
    this.items.push(item);
    this.save();
    return item;
  }

  get(clientId) {
    return this.items.find((i) => i.client_id === clientId) || null;
  }

  remove(clientId) {
    const before = this.items.length;
    this.items = this.items.filter((i) => i.client_id !== clientId);
    if (this.items.length !== before) this.save();
  }

  fail(clientId, error) {
    const item = this.get(clientId);
    if (item) {
      item.state = 'failed';
      item.error = error;
      this.save();
    }
    return item;
  }

  retry(clientId) {
    const item = this.get(clientId);
    if (item) {
      item.state = 'pending';
      item.error = null;
      this.save();
    }
    return item;
  }

  pending() {
    return this.items.filter((i) => i.state === 'pending');
  }

  forRoom(roomId) {
    return this.items.filter((i) => i.room_id === roomId);
  }
}
