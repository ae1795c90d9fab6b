// The web client of the chat protocol (docs/protocol.md): sign-in against Cognito's JSON API, one
// WebSocket that reconnects with backoff and resumes with `sync`, and the page around it.
// Sections, from the wire up: storage, Cognito, chat state (no I/O), connection, page.

const PING_INTERVAL_MS = 5 * 60 * 1000; // well inside API Gateway's 10-minute idle timeout
const PONG_WAIT_MS = 30 * 1000; // no frame this long after a ping: the socket is dead
const REFRESH_MARGIN_MS = 5 * 60 * 1000; // refresh the access token this long before it expires
const HISTORY_LIMIT = 100; // messages asked for on a tab's first connection
const KEPT_MESSAGES = 300; // messages a tab keeps across reloads
const USERNAME_RE = /^[a-z0-9_.-]{3,32}$/;

// ---------------------------------------------------------------- storage (per tab) ----------
// sessionStorage, not localStorage: each tab holds its own session and cursor, so several tabs
// (even as different users) work side by side, and a reload resumes where the tab was.

const STORAGE_KEY = "chat.session";

function loadStored() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY)) ?? null;
  } catch {
    return null;
  }
}

function store(session) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

function forgetStored() {
  sessionStorage.removeItem(STORAGE_KEY);
}

// What a tab keeps when its account is gone: who it was and what it had not sent yet, so that
// signing in again (or up, on a server that was reset) sends those messages after all.
const LEFTOVER_KEY = "chat.leftover";

function loadLeftover() {
  try {
    return JSON.parse(sessionStorage.getItem(LEFTOVER_KEY)) ?? null;
  } catch {
    return null;
  }
}

function storeLeftover(leftover) {
  sessionStorage.setItem(LEFTOVER_KEY, JSON.stringify(leftover));
}

function forgetLeftover() {
  sessionStorage.removeItem(LEFTOVER_KEY);
}

// ---------------------------------------------------------------- Cognito ---------------------

class CognitoError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

// Cognito's answers for an unknown user: UserNotFoundException, or (the deployed and the local
// pool) NotAuthorizedException, the same as for a wrong password.
const MAYBE_UNKNOWN_USER = ["UserNotFoundException", "NotAuthorizedException"];
// A refresh answered so means the account (or the whole user pool and app client) is gone, or
// the session was revoked: signing in again is the only way on. Anything else is worth a retry.
const SESSION_GONE = ["ResourceNotFoundException", "UserNotFoundException", "NotAuthorizedException"];

// Cognito's refusals in words for the sign-in form (its own messages can be a bare id).
function describeSignInError(error, username) {
  switch (error.code) {
    case "NotAuthorizedException":
    case "UsernameExistsException":
      return `Wrong password for ${username}, or the name is taken.`;
    case "InvalidPasswordException":
    case "InvalidParameterException":
      return "The password needs at least 8 characters, with a lower-case letter and a digit.";
    case "UserLambdaValidationException":
      return "That username is not allowed: 3 to 32 characters of a-z 0-9 _ . -";
    case "TooManyRequestsException":
    case "LimitExceededException":
      return "Too many attempts; wait a minute and try again.";
    case "ResourceNotFoundException":
      return "The chat server's configuration changed; reload the page.";
    case undefined:
      return "Cannot reach the chat server. Is it running?";
    default:
      return "Signing in did not work; try again in a moment.";
  }
}

async function cognito(config, operation, body) {
  const response = await fetch(config.cognitoEndpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": `AWSCognitoIdentityProviderService.${operation}`,
    },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    // "__type" may carry a namespace: "com.amazonaws...#UsernameExistsException".
    const code = String(answer.__type ?? response.headers.get("x-amzn-errortype") ?? response.status);
    throw new CognitoError(code.split("#").pop().split(":")[0], answer.message ?? answer.Message);
  }
  return answer;
}

function tokensFrom(result, previous) {
  return {
    accessToken: result.AccessToken,
    // A refresh answers without a new refresh token: keep the one we have.
    refreshToken: result.RefreshToken ?? previous?.refreshToken ?? null,
    expiresAt: Date.now() + (result.ExpiresIn ?? 3600) * 1000,
  };
}

async function initiateAuth(config, flow, parameters) {
  const answer = await cognito(config, "InitiateAuth", {
    AuthFlow: flow,
    ClientId: config.userPoolClientId,
    AuthParameters: parameters,
  });
  if (!answer.AuthenticationResult) {
    throw new CognitoError(answer.ChallengeName ?? "Challenge", "This account needs another client to sign in.");
  }
  return answer.AuthenticationResult;
}

async function signUp(config, username, password) {
  try {
    await cognito(config, "SignUp", { ClientId: config.userPoolClientId, Username: username, Password: password });
    return true;
  } catch (error) {
    if (error.code === "UsernameExistsException") return false;
    throw error;
  }
}

// Sign in; a username nobody has yet is registered first ("registered on first use").
async function signInOrUp(config, username, password) {
  const parameters = { USERNAME: username, PASSWORD: password };
  try {
    return tokensFrom(await initiateAuth(config, "USER_PASSWORD_AUTH", parameters));
  } catch (error) {
    if (!MAYBE_UNKNOWN_USER.includes(error.code)) throw error;
    // The pool does not say whether the name exists: signing it up tells.
    if (!(await signUp(config, username, password))) {
      throw new CognitoError(error.code, `Wrong password for ${username}, or that name is taken by someone else.`);
    }
  }
  return tokensFrom(await initiateAuth(config, "USER_PASSWORD_AUTH", parameters));
}

async function refreshTokens(config, tokens) {
  const result = await initiateAuth(config, "REFRESH_TOKEN_AUTH", { REFRESH_TOKEN: tokens.refreshToken });
  return tokensFrom(result, tokens);
}

// ---------------------------------------------------------------- chat state (no I/O) --------
// What survives a reconnect: the cursor, the ids already seen, the sends not yet acknowledged.
// `receive` turns one server frame into events for the page and frames to send back.

function newClientMsgId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

class ChatState {
  constructor(username, { cursor = null, outbox = [], seenIds = [] } = {}) {
    this.username = username;
    this.cursor = cursor;
    this.outbox = new Map(outbox.map((message) => [message.clientMsgId, message]));
    this.seen = new Set(seenIds);
    this.syncing = false;
    // The `at` (ms) of the last presence frame applied per user: an older one is stale.
    this.presenceAt = new Map();
    // One send at a time: the next leaves when the previous is acknowledged (or refused), so
    // everyone receives this user's messages in the order they were typed.
    this.inFlight = null;
  }

  compose(text, to = null) {
    const message = { clientMsgId: newClientMsgId(), text, to };
    this.outbox.set(message.clientMsgId, message);
    return message;
  }

  // The next unacknowledged message to send, if none is waiting for its ack.
  nextSends() {
    if (this.inFlight && this.outbox.has(this.inFlight)) return [];
    const next = this.outbox.values().next();
    this.inFlight = next.done ? null : next.value.clientMsgId;
    return next.done ? [] : [sendFrame(next.value)];
  }

  settle(clientMsgId) {
    this.outbox.delete(clientMsgId);
    return this.nextSends();
  }

  // Who is here, what was missed (or recent history on a first connection), what is unacked.
  openingFrames() {
    this.syncing = true;
    this.inFlight = null; // whatever was in flight on the old socket is resent (same clientMsgId)
    const sync = this.cursor ? { action: "sync", since: this.cursor } : { action: "sync", limit: HISTORY_LIMIT };
    return [{ action: "who" }, sync, ...this.nextSends()];
  }

  receive(frame) {
    switch (frame.type) {
      case "message":
        return this.onMessage(frame);
      case "ack":
        return this.onAck(frame);
      case "synced":
        return this.onSynced(frame);
      case "presence":
        return this.onPresence(frame);
      case "error":
        // A refused message is not stored: resending it would only fail again.
        return { events: [frame], replies: frame.clientMsgId ? this.settle(frame.clientMsgId) : [] };
      default:
        return { events: [frame], replies: [] };
    }
  }

  // A presence frame older than the last one applied for that user (late, or repeated by a worker
  // that ran twice) is dropped: a stale "offline" cannot undo a newer "online". No `at`: applied.
  onPresence(frame) {
    const at = typeof frame.at === "string" ? Date.parse(frame.at) : NaN;
    if (!Number.isNaN(at)) {
      if (at < (this.presenceAt.get(frame.user) ?? -Infinity)) return { events: [], replies: [] };
      this.presenceAt.set(frame.user, at);
    }
    return { events: [frame], replies: [] };
  }

  onMessage(frame) {
    this.advanceCursor(frame);
    if (frame.from === this.username) this.outbox.delete(frame.clientMsgId); // stored already
    if (this.seen.has(frame.id)) return { events: [], replies: [] };
    this.seen.add(frame.id);
    return { events: [frame], replies: [] };
  }

  onAck(frame) {
    this.advanceCursor(frame);
    const sent = this.outbox.get(frame.clientMsgId);
    const replies = this.settle(frame.clientMsgId);
    const events = [frame];
    // A private message is not echoed to the connection that sent it: the ack is the only sign
    // of it here, so our copy is made from it (a public echo arriving later is a duplicate).
    if (sent && !this.seen.has(frame.id)) {
      this.seen.add(frame.id);
      events.unshift(this.ownCopy(sent, frame));
    }
    return { events, replies };
  }

  ownCopy(sent, ack) {
    return {
      type: "message",
      id: ack.id,
      cursor: ack.cursor,
      from: this.username,
      to: sent.to,
      text: sent.text,
      sentAt: new Date().toISOString(),
      clientMsgId: sent.clientMsgId,
    };
  }

  onSynced(frame) {
    if (frame.cursor) this.cursor = frame.cursor;
    if (frame.more) return { events: [], replies: [{ action: "sync", since: this.cursor }] };
    this.syncing = false;
    return { events: [frame], replies: [] };
  }

  // During a replay live frames interleave with replayed ones, out of storage order: the
  // `synced` cursor settles it. A cursor a little behind only replays what dedup absorbs.
  advanceCursor(frame) {
    if (!this.syncing && frame.cursor) this.cursor = frame.cursor;
  }
}

function sendFrame(message) {
  const frame = { action: "sendmessage", text: message.text, clientMsgId: message.clientMsgId };
  if (message.to) frame.to = message.to;
  return frame;
}

// What a typed line means: {say}, {who}, {invalid}, or null for a blank line.
function parseInput(line) {
  const text = line.trim();
  if (!text) return null;
  if (!text.startsWith("/")) return { say: { text, to: null } };
  const command = text.split(/\s/, 1)[0];
  switch (command.toLowerCase()) {
    case "/who":
      return { who: true };
    case "/msg": {
      // Split here rather than leave "/msg" to the server, so our copy knows its recipient.
      const [, user = "", body = ""] = text.match(/^\S+\s+(\S+)\s+([\s\S]+)$/) ?? [];
      const to = user.toLowerCase();
      if (!USERNAME_RE.test(to) || !body.trim()) return { invalid: "usage: /msg user text" };
      return { say: { text: body.trim(), to } };
    }
    default:
      return { invalid: `unknown command ${command} — plain text is public, /msg user text is private, /who` };
  }
}

// ---------------------------------------------------------------- connection -----------------

// Reconnect delays: exponential up to a cap; half fixed, half random ("equal jitter"), so the
// clients one outage dropped do not all come back in the same instant.
class Backoff {
  constructor(baseMs = 500, capMs = 30_000) {
    Object.assign(this, { baseMs, capMs, attempt: 0 });
  }
  next() {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.attempt++);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
  reset() {
    this.attempt = 0;
  }
}

// The session cannot go on: `reset` when the server's user pool is not the one the tab signed in
// to (or Cognito no longer knows the account), `ended` when only the session was refused.
class SignedOut extends Error {
  constructor(kind) {
    super(kind);
    this.kind = kind;
  }
}

const CONFIG_KEYS = ["websocketUrl", "region", "userPoolId", "userPoolClientId", "cognitoEndpoint"];

// One user's socket: signs its URL with a fresh token, resumes, keeps alive, reconnects.
class Connection {
  constructor({ config, auth, state, onEvent }) {
    Object.assign(this, { config, auth, state, onEvent });
    this.backoff = new Backoff();
    this.socket = null;
    this.retryTimer = null;
    this.stopped = false;
    // After a failed or lost connection the configuration is read again before the next attempt:
    // a restarted stack may have new ids (a fresh user pool, another app client).
    this.configStale = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.socket?.close(1000, "bye");
  }

  // The network came back: retry now rather than wait out the backoff.
  reconnectNow() {
    if (this.stopped || this.socket || this.signingIn) return;
    clearTimeout(this.retryTimer);
    this.backoff.reset();
    this.connect();
  }

  // The network went away. Browsers may keep a dead socket "open" for minutes, and its closing
  // handshake cannot complete offline: let it go now and resume with `sync` when back online.
  drop() {
    const socket = this.socket;
    if (!socket) return;
    this.detach(socket);
    socket.close(4000, "offline");
    this.retryLater("the network is offline");
  }

  detach(socket) {
    socket.onopen = socket.onmessage = socket.onclose = null;
    clearInterval(socket.pingTimer);
    clearTimeout(socket.pongTimer);
    if (this.socket === socket) this.socket = null;
  }

  send(frame) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  async connect() {
    this.setState("connecting");
    let token;
    this.signingIn = true;
    try {
      if (this.configStale) await this.reloadConfig();
      token = await this.auth.accessToken();
    } catch (error) {
      if (error instanceof SignedOut) return this.onEvent({ type: "signed-out", kind: error.kind });
      return this.retryLater(error instanceof CognitoError ? "sign-in failed" : "the chat server does not answer");
    } finally {
      this.signingIn = false;
    }
    if (this.stopped) return;
    const separator = this.config.websocketUrl.includes("?") ? "&" : "?";
    this.open(new WebSocket(`${this.config.websocketUrl}${separator}token=${encodeURIComponent(token)}`));
  }

  async reloadConfig() {
    const fresh = await loadConfig();
    this.configStale = false;
    const changed = CONFIG_KEYS.filter((key) => fresh[key] !== this.config[key]);
    if (!changed.length) return;
    Object.assign(this.config, fresh); // shared with Auth and the page
    if (changed.includes("userPoolId") || changed.includes("userPoolClientId")) this.auth.poolChanged();
  }

  open(socket) {
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.backoff.reset();
      this.setState("online");
      for (const frame of this.state.openingFrames()) this.send(frame);
      this.keepAlive(socket);
    };
    socket.onmessage = (event) => this.dispatch(event.data);
    socket.onclose = (event) => {
      this.detach(socket);
      // A refused handshake looks like any failed connection here (browsers hide the 401):
      // the token may have expired, so the next attempt uses a refreshed one.
      if (!opened) this.auth.invalidate();
      this.configStale = true;
      if (!this.stopped) this.retryLater(event.reason || (opened ? "connection lost" : "could not connect"));
    };
  }

  keepAlive(socket) {
    socket.pingTimer = setInterval(() => {
      this.send({ action: "ping" });
      socket.pongTimer = setTimeout(() => socket.close(4001, "no answer to ping"), PONG_WAIT_MS);
    }, PING_INTERVAL_MS);
  }

  dispatch(data) {
    clearTimeout(this.socket?.pongTimer); // any frame proves the socket alive
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // the protocol only sends JSON objects
    }
    const { events, replies } = this.state.receive(frame);
    for (const reply of replies) this.send(reply);
    for (const event of events) this.onEvent(event);
  }

  retryLater(reason) {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    // Offline, the "online" event brings us back at once; the long delay is only a fallback.
    const delay = navigator.onLine === false ? this.backoff.capMs : this.backoff.next();
    this.setState("offline", { reason, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  setState(state, details = {}) {
    this.onEvent({ type: "connection", state, ...details });
  }
}

// Access tokens for the signed-in user: refreshed before they expire and after a refused
// handshake; signs the tab out when the refresh token itself is no longer accepted.
class Auth {
  constructor(config, tokens, onTokens) {
    Object.assign(this, { config, tokens, onTokens });
    this.scheduleRefresh();
  }

  async accessToken() {
    if (Date.now() < this.tokens.expiresAt - REFRESH_MARGIN_MS) return this.tokens.accessToken;
    await this.refresh();
    return this.tokens.accessToken;
  }

  invalidate() {
    this.tokens = { ...this.tokens, expiresAt: 0 };
  }

  // The tokens are another user pool's: the next refresh tells whether this one knows the account.
  poolChanged() {
    this.poolWasReset = true;
    this.invalidate();
  }

  // One refresh at a time: the timer and a reconnect may both ask for one.
  refresh() {
    this.refreshing ??= this.refreshOnce().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async refreshOnce() {
    if (!this.tokens.refreshToken) throw new SignedOut("ended");
    try {
      this.tokens = await refreshTokens(this.config, this.tokens);
    } catch (error) {
      if (error instanceof CognitoError && SESSION_GONE.includes(error.code)) {
        const reset = this.poolWasReset || error.code !== "NotAuthorizedException";
        throw new SignedOut(reset ? "reset" : "ended");
      }
      throw error; // the network, or Cognito busy: worth retrying
    }
    this.onTokens(this.tokens);
    this.scheduleRefresh();
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    const due = this.tokens.expiresAt - REFRESH_MARGIN_MS - Date.now();
    this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), Math.max(due, 1000));
  }

  stop() {
    clearTimeout(this.refreshTimer);
  }
}

// ---------------------------------------------------------------- page -------------------------

const $ = (testId, root = document) => root.querySelector(`[data-testid="${testId}"]`);

function timeOf(sentAt) {
  if (!sentAt) return "";
  const date = new Date(sentAt);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// "to bob" on private messages this user sent, "from alice" on those sent to this user.
function privateLabel(message, me) {
  if (!message.to) return null;
  if (message.from === me) return `to ${message.to}`;
  if (message.to === me) return `from ${message.from}`;
  return `${message.from} to ${message.to}`;
}

class ChatPage {
  constructor(config, session) {
    this.config = config;
    this.session = session; // {username, tokens, cursor, outbox, messages}
    this.me = session.username;
    this.online = new Set();
    this.whoAsked = 0;
    this.list = $("message-list");
    this.state = new ChatState(this.me, {
      cursor: session.cursor,
      outbox: session.outbox ?? [],
      seenIds: (session.messages ?? []).map((message) => message.id),
    });
    this.auth = new Auth(config, session.tokens, (tokens) => this.save({ tokens }));
    this.connection = new Connection({ config, auth: this.auth, state: this.state, onEvent: (e) => this.onEvent(e) });
  }

  show() {
    $("sign-in-view").hidden = true;
    $("chat-view").hidden = false;
    $("current-user").textContent = this.me;
    this.list.replaceChildren();
    for (const message of this.session.messages ?? []) this.showMessage(message);
    for (const message of this.state.outbox.values()) this.showPending(message);
    this.listen();
    this.connection.start();
    $("message-input").focus();
  }

  listen() {
    this.handlers = {
      submit: (event) => this.onSubmit(event),
      signOut: () => this.signOut(),
      online: () => this.connection.reconnectNow(),
      offline: () => this.connection.drop(),
    };
    $("composer").addEventListener("submit", this.handlers.submit);
    $("sign-out").addEventListener("click", this.handlers.signOut);
    window.addEventListener("online", this.handlers.online);
    window.addEventListener("offline", this.handlers.offline);
  }

  close() {
    $("composer").removeEventListener("submit", this.handlers.submit);
    $("sign-out").removeEventListener("click", this.handlers.signOut);
    window.removeEventListener("online", this.handlers.online);
    window.removeEventListener("offline", this.handlers.offline);
    this.connection.stop();
    this.auth.stop();
  }

  signOut(reason = "") {
    this.close();
    forgetStored();
    forgetLeftover();
    showSignIn(reason);
  }

  // The account or its session is gone: back to the form, the name filled in, nothing unsent lost.
  leave(kind) {
    const reason = leavingMessage(kind, this.me, this.state.outbox.size);
    this.close();
    forgetStored();
    storeLeftover({ username: this.me, outbox: [...this.state.outbox.values()], reason });
    showSignIn(reason, this.me);
  }

  onSubmit(event) {
    event.preventDefault();
    const input = $("message-input");
    const command = parseInput(input.value);
    input.value = "";
    if (!command) return;
    if (command.invalid) return this.showNotice(command.invalid, "error");
    if (command.who) {
      this.whoAsked += 1;
      return this.connection.send({ action: "who" });
    }
    const message = this.state.compose(command.say.text, command.say.to);
    this.showPending(message);
    for (const frame of this.state.nextSends()) this.connection.send(frame); // offline, it waits in the outbox
    this.persist();
  }

  onEvent(event) {
    const handler = {
      message: () => this.onMessage(event),
      ack: () => this.persist(),
      synced: () => this.onSynced(event),
      who: () => this.onWho(event),
      presence: () => this.onPresence(event),
      error: () => this.onError(event),
      connection: () => this.showState(event),
      "signed-out": () => this.leave(event.kind),
    }[event.type];
    handler?.();
  }

  onMessage(message) {
    this.showMessage(message);
    const messages = [...(this.session.messages ?? []), message].slice(-KEPT_MESSAGES);
    this.save({ messages });
  }

  onSynced(event) {
    if (!event.complete) this.showNotice("Some messages from while you were away are past retention and gone.");
    this.persist();
  }

  onWho(event) {
    this.online = new Set(event.users);
    this.showOnline();
    if (this.whoAsked > 0) {
      this.whoAsked -= 1;
      this.showNotice(`Online: ${event.users.join(", ") || "nobody"}`);
    }
  }

  onPresence(event) {
    if (event.online) this.online.add(event.user);
    else this.online.delete(event.user);
    this.showOnline();
  }

  onError(event) {
    const pending = event.clientMsgId && this.findPending(event.clientMsgId);
    if (pending) {
      pending.classList.add("failed");
      pending.dataset.pending = "false";
      $("message-status", pending).textContent = `not sent: ${event.code}`;
    }
    this.showNotice(`${event.code}: ${event.message}`, "error");
    this.persist();
  }

  persist() {
    this.save({ cursor: this.state.cursor, outbox: [...this.state.outbox.values()] });
  }

  save(changes) {
    Object.assign(this.session, changes);
    store(this.session);
  }

  // -- drawing

  showMessage(message) {
    // Our own message may be on screen already, waiting for its ack: fill it in.
    const pending = message.from === this.me && message.clientMsgId && this.findPending(message.clientMsgId);
    const item = pending || this.newMessageItem();
    this.fillMessage(item, message);
    if (!pending) this.append(item);
  }

  showPending(message) {
    const item = this.newMessageItem();
    this.fillMessage(item, { ...message, from: this.me, id: "", sentAt: null });
    item.dataset.pending = "true";
    item.classList.add("pending");
    $("message-status", item).textContent = "sending…";
    this.append(item);
  }

  findPending(clientMsgId) {
    return [...this.list.querySelectorAll('[data-pending="true"]')].find((item) => item.dataset.clientMsgId === clientMsgId);
  }

  newMessageItem() {
    return document.getElementById("message-template").content.firstElementChild.cloneNode(true);
  }

  fillMessage(item, message) {
    const label = privateLabel(message, this.me);
    Object.assign(item.dataset, {
      id: message.id ?? "",
      clientMsgId: message.clientMsgId ?? "",
      kind: message.to ? "private" : "public",
      from: message.from,
      to: message.to ?? "",
      pending: "false",
    });
    item.classList.remove("pending");
    item.classList.toggle("private", Boolean(message.to));
    item.classList.toggle("mine", message.from === this.me);
    $("message-from", item).textContent = message.from;
    $("message-label", item).textContent = label ?? "";
    $("message-label", item).hidden = !label;
    $("message-time", item).textContent = timeOf(message.sentAt);
    if (message.sentAt) $("message-time", item).dateTime = message.sentAt;
    $("message-status", item).textContent = "";
    $("message-text", item).textContent = message.text;
  }

  showNotice(text, kind = "notice") {
    const item = document.createElement("li");
    item.className = `notice ${kind}`;
    item.dataset.testid = kind === "error" ? "error" : "notice";
    if (kind === "error") item.setAttribute("role", "alert");
    item.textContent = text;
    this.append(item);
  }

  append(item) {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 48;
    this.list.append(item);
    if (atBottom) item.scrollIntoView({ block: "end" });
  }

  showOnline() {
    const items = [...this.online].sort().map((user) => {
      const item = document.createElement("li");
      item.dataset.testid = "online-user";
      item.dataset.user = user;
      item.textContent = user === this.me ? `${user} (you)` : user;
      return item;
    });
    $("online-users").replaceChildren(...items);
    $("online-count").textContent = String(this.online.size);
  }

  showState(event) {
    const indicator = $("connection-state");
    indicator.dataset.state = event.state;
    clearInterval(this.countdown);
    if (event.state === "online") indicator.textContent = "Online";
    else if (event.state === "connecting") indicator.textContent = "Connecting…";
    else this.countDown(indicator, event);
  }

  countDown(indicator, event) {
    const draw = () => {
      const seconds = Math.max(0, Math.ceil((event.retryAt - Date.now()) / 1000));
      indicator.textContent = `Offline · retrying in ${seconds}s`;
      indicator.title = event.reason ?? "";
    };
    draw();
    this.countdown = setInterval(draw, 1000);
  }
}

// ---------------------------------------------------------------- start ------------------------

function leavingMessage(kind, username, unsent) {
  const kept = unsent
    ? ` ${unsent === 1 ? "Your unsent message is" : `Your ${unsent} unsent messages are`} kept and will be sent when you are back.`
    : "";
  if (kind === "reset") {
    return `The chat server was reset: the account ${username} no longer exists there. Sign in with a password to create it again.${kept}`;
  }
  return `Your session as ${username} has ended. Sign in again to carry on.${kept}`;
}

function showSignIn(reason = "", username = "") {
  $("chat-view").hidden = true;
  $("sign-in-view").hidden = false;
  showSignInError(reason);
  if (username) $("username").value = username;
  (username ? $("password") : $("username")).focus();
}

function showSignInError(text) {
  $("sign-in-error").textContent = text;
  $("sign-in-error").hidden = !text;
}

function startChat(config, session) {
  new ChatPage(config, session).show();
}

async function onSignIn(event, config) {
  event.preventDefault();
  const username = $("username").value.trim().toLowerCase();
  const password = $("password").value;
  if (!USERNAME_RE.test(username)) return showSignInError("A username is 3 to 32 characters: a-z 0-9 _ . -");
  const button = $("sign-in-button");
  button.disabled = true;
  showSignInError("");
  try {
    // The stack may have restarted with new ids since the page loaded.
    Object.assign(config, await loadConfig());
    const tokens = await signInOrUp(config, username, password);
    $("password").value = "";
    const leftover = loadLeftover();
    const outbox = leftover?.username === username ? leftover.outbox : [];
    const session = { username, tokens, cursor: null, outbox, messages: [] };
    store(session);
    forgetLeftover();
    startChat(config, session);
  } catch (error) {
    showSignInError(describeSignInError(error, username));
  } finally {
    button.disabled = false;
  }
}

// The configuration comes only from the page's own origin: it names where the password and the
// tokens are sent, so no link, parameter or fragment may choose it.
const CONFIG_PATH = "config.json";

async function loadConfig() {
  const url = new URL(CONFIG_PATH, location.href);
  const response = await fetch(url, { cache: "no-store", credentials: "same-origin", redirect: "error" });
  if (!response.ok) throw new Error(`${CONFIG_PATH}: HTTP ${response.status}`);
  return response.json();
}

// A page opened (or reloaded) while the stack restarts waits for it rather than giving up.
async function waitForConfig() {
  for (let attempt = 0; ; attempt++) {
    try {
      return await loadConfig();
    } catch {
      showSignInError("The chat server does not answer yet; trying again…");
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)));
    }
  }
}

async function main() {
  const config = await waitForConfig();
  showSignInError("");
  $("sign-in-form").addEventListener("submit", (event) => onSignIn(event, config));
  const session = loadStored();
  const leftover = loadLeftover();
  if (session?.tokens && session.username) startChat(config, session);
  else if (leftover) showSignIn(leftover.reason ?? "", leftover.username);
  else showSignIn();
}

main();
