// The websocket: connect with the session cookie, resume what was missed, answer pings,
// reconnect with backoff.  Events are handed on in order and never twice per room.
//
// Resume: the server authenticates the cookie at once and sends `welcome` then `synced`
// ({rooms: {id: seq}}).  We then send `resume` with the last sequence we processed per room;
// the server replays what we missed and answers `synced` again (with our ref).  Events that
// arrive in between are held, sorted, and applied once that answer is in.

const BACKOFF_MS = [300, 1000, 2000, 4000, 8000, 15000];
const CLOSE_UNAUTHENTICATED = 4001;
const CLOSE_REVOKED = 4003;

export class Realtime extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.state = 'offline'; // offline | connecting | syncing | online
    this.high = new Map(); // room id → last sequence processed
    this.held = [];
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.watchdog = null;
    this.heartbeatMs = 25000;
    this.resumeRef = null;
    this.refCounter = 0;
    window.addEventListener('offline', () => this.drop());
    window.addEventListener('online', () => this.reconnectSoon(0));
  }

  /** Seed a room's position from REST data (only for rooms we have not heard of yet). */
  seed(roomId, seq) {
    if (!this.high.has(roomId)) this.high.set(roomId, seq);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    if (this.ws) this.ws.close(1000, 'sign_out');
    this.ws = null;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }

  connect() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    if (navigator.onLine === false) {
      this.setState('offline');
      return;
    }
    clearTimeout(this.timer);
    this.setState('connecting');
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${window.location.host}/ws`);
    this.ws = ws;
    this.held = [];
    this.lastError = null;
    ws.addEventListener('message', (e) => this.onFrame(ws, e.data));
    ws.addEventListener('close', (e) => this.onClose(ws, e));
    ws.addEventListener('error', () => {});
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearTimeout(this.watchdog);
    this.setState('offline');
    if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_REVOKED) {
      this.stopped = true;
      // The reason names why (license_revoked, device_revoked, policy_changed …); a 4001 comes
      // after an error frame with the server's sentence.
      const detail = { code: event.code, reason: event.reason || '', error: this.lastError };
      this.dispatchEvent(new CustomEvent('signedout', { detail }));
      return;
    }
    this.reconnectSoon();
  }

  reconnectSoon(delay) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const base = delay ?? BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), base + (delay === 0 ? 0 : Math.random() * 300));
  }

  /** Close now (the browser went offline, or the server fell silent); reconnect later. */
  drop() {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(4000, 'client_offline');
      clearTimeout(this.watchdog);
      this.setState('offline');
    }
    if (navigator.onLine !== false) this.reconnectSoon();
  }

  armWatchdog() {
    clearTimeout(this.watchdog);
    // Nothing heard for 2.5 heartbeats: the connection is dead even if the socket says not.
    this.watchdog = setTimeout(() => this.drop(), this.heartbeatMs * 2.5);
  }

  raw(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Send a frame when fully synced; false when it must wait (offline). */
  send(frame) {
    return this.state === 'online' && this.raw(frame);
  }

  onFrame(ws, text) {
    if (ws !== this.ws) return;
    this.armWatchdog();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'welcome':
        if (frame.heartbeat_s) this.heartbeatMs = frame.heartbeat_s * 1000;
        this.dispatchEvent(new CustomEvent('welcome', { detail: frame }));
        break;
      case 'synced':
        if (frame.ref && frame.ref === this.resumeRef) this.finishResume();
        else if (!frame.ref) this.beginResume(frame.rooms || {});
        break;
      case 'event':
        if (this.state === 'online') this.apply(frame);
        else this.held.push(frame);
        break;
      case 'ping':
        this.raw({ type: 'pong' });
        break;
      case 'ack':
        this.dispatchEvent(new CustomEvent('ack', { detail: frame }));
        break;
      case 'notice': // personal, not part of any room's log (approval requested / decided)
        this.dispatchEvent(new CustomEvent('notice', { detail: frame }));
        break;
      case 'error':
        if (!frame.ref) this.lastError = frame;
        this.dispatchEvent(new CustomEvent('servererror', { detail: frame }));
        break;
      default:
        break;
    }
  }

  beginResume(rooms) {
    this.setState('syncing');
    const since = {};
    for (const [id, serverSeq] of Object.entries(rooms)) {
      const mine = this.high.get(Number(id));
      if (mine !== undefined && mine < serverSeq) since[id] = mine;
      if (mine === undefined) this.high.set(Number(id), serverSeq);
    }
    this.refCounter += 1;
    this.resumeRef = `resume-${this.refCounter}`;
    this.raw({ type: 'resume', id: this.resumeRef, since });
  }

  finishResume() {
    const held = this.held.sort((a, b) => (a.room_id - b.room_id) || (a.seq - b.seq));
    this.held = [];
    this.attempt = 0;
    for (const frame of held) this.apply(frame);
    this.setState('online');
  }

  apply(frame) {
    const last = this.high.get(frame.room_id);
    if (last !== undefined && frame.seq <= last) return;
    this.high.set(frame.room_id, frame.seq);
    this.dispatchEvent(new CustomEvent('event', { detail: frame }));
  }
}
