// The web client of the chat protocol (docs/protocol.md): sign-in against Cognito's JSON API, one
// WebSocket that reconnects with backoff and resumes with `sync`, and the page around it.
// Sections, from the wire up: storage, Cognito, chat state (no I/O), connection, page.

const PING_INTERVAL_MS = 5 * 60 * 1000; // well inside API Gateway's 10-minute idle timeout
const PONG_WAIT_MS = 30 * 1000; // no frame this long after a ping: the socket is dead
const REFRESH_MARGIN_MS = 5 * 60 * 1000; // refresh the access token this long before it expires
const HISTORY_LIMIT = 100; // messages asked for on a tab's first connection
const KEPT_MESSAGES = 300; // messages a tab keeps across reloads
const USERNAME_RE = /^[a-z0-9_.-]{3,32}$/;
const TEXT_LIMIT = 4000; // characters (code points) after trimming, as the server counts them
const COUNTER_FROM = 3500; // the counter shows from here on
const PAGE_SIZE = 50; // messages asked for per `history` page
const TYPING_EVERY_MS = 3000; // the server forwards at most one `typing` per 3 s anyway
const TYPING_SHOWN_MS = 5000; // how long "… is typing" stays without a new `typing`
const GROUP_WITHIN_MS = 5 * 60 * 1000; // consecutive messages of one sender this close share a header
const READ_SETTLE_MS = 500; // a thread on screen is marked read this long after its last new message

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

// Sign-out revokes the refresh token (and the access tokens it issued): a copied one stops working.
async function revokeRefreshToken(config, tokens) {
  if (!tokens?.refreshToken) return;
  await cognito(config, "RevokeToken", { Token: tokens.refreshToken, ClientId: config.userPoolClientId });
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

  // A refused message sent again as it was (same clientMsgId: it was never stored).
  resend(message) {
    this.outbox.set(message.clientMsgId, message);
    return this.nextSends();
  }

  settle(clientMsgId) {
    this.outbox.delete(clientMsgId);
    return this.nextSends();
  }

  // Who is here, what was missed (or recent history on a first connection), what is unacked.
  openingFrames() {
    this.syncing = true;
    this.inFlight = null; // whatever was in flight on the old socket is resent (same clientMsgId)
    // `batch`: many replayed messages per frame (a version 1 server ignores the field).
    const sync = this.cursor
      ? { action: "sync", since: this.cursor, batch: true }
      : { action: "sync", limit: HISTORY_LIMIT, batch: true };
    return [{ action: "who" }, sync, { action: "inbox" }, ...this.nextSends()];
  }

  receive(frame) {
    switch (frame.type) {
      case "message":
        return this.onMessage(frame);
      case "messages":
        return this.onBatch(frame);
      case "ack":
        return this.onAck(frame);
      case "synced":
        return this.onSynced(frame);
      case "presence":
        return this.onPresence(frame);
      case "error":
        // A refused message is not stored: resending it would only fail again, unless the user
        // retries it (the event carries it for that).
        if (!frame.clientMsgId) return { events: [frame], replies: [] };
        return { events: [{ ...frame, sent: this.outbox.get(frame.clientMsgId) }], replies: this.settle(frame.clientMsgId) };
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

  // A batch of replayed messages: each handled as if it came in its own `message` frame.
  onBatch(frame) {
    const events = [];
    for (const message of Array.isArray(frame.messages) ? frame.messages : []) {
      events.push(...this.onMessage({ type: "message", ...message }).events);
    }
    return { events, replies: [] };
  }

  onMessage(frame) {
    this.advanceCursor(frame);
    if (frame.from === this.username) this.outbox.delete(frame.clientMsgId); // stored already
    if (this.seen.has(frame.id)) return { events: [], replies: [] };
    this.seen.add(frame.id);
    return { events: [frame], replies: [] };
  }

  // A `history` page: what it holds is stored, so ours among it is no longer waiting to be sent
  // (its ack may still be on the way, and the page draws from the outbox until then).
  learnStored(messages) {
    for (const message of messages) {
      this.seen.add(message.id);
      if (message.from === this.username && message.clientMsgId) this.outbox.delete(message.clientMsgId);
    }
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
    if (frame.more) return { events: [], replies: [{ action: "sync", since: this.cursor, batch: true }] };
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

// What a typed line means: {say}, {open} (a conversation), {who}, {invalid}, or null for a blank
// line. Plain text goes to `to`: the conversation on screen (null: everyone).
function parseInput(line, to = null) {
  const text = line.trim();
  if (!text) return null;
  if (!text.startsWith("/")) return { say: { text, to } };
  const command = text.split(/\s/, 1)[0];
  switch (command.toLowerCase()) {
    case "/who":
      return { who: true };
    case "/msg": {
      // Split here rather than leave "/msg" to the server, so our copy knows its recipient.
      const [, user = "", body = ""] = text.match(/^\S+\s+(\S+)(?:\s+([\s\S]*))?$/) ?? [];
      const recipient = user.toLowerCase();
      if (!USERNAME_RE.test(recipient)) return { invalid: "To send a private message, type /msg, a username, then your text." };
      if (!body.trim()) return { open: recipient };
      return { say: { text: body.trim(), to: recipient } };
    }
    default:
      return { invalid: `There is no command ${command}. Plain text goes to this conversation; /msg user text is private; /who lists who is online.` };
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

  // True when the frame went out (false with no open socket: the caller may try again later).
  send(frame) {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
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

function msOf(sentAt) {
  const ms = sentAt ? Date.parse(sentAt) : NaN;
  return Number.isNaN(ms) ? Date.now() : ms;
}

// The local calendar day of a message, as a key and in words ("Today", "Yesterday", a date).
function dayKey(ms) {
  const date = new Date(ms);
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

function dayName(ms) {
  const today = new Date();
  if (dayKey(ms) === dayKey(today.getTime())) return "Today";
  if (dayKey(ms) === dayKey(today.getTime() - 86_400_000)) return "Yesterday";
  const sameYear = new Date(ms).getFullYear() === today.getFullYear();
  return new Date(ms).toLocaleDateString([], {
    weekday: "long",
    day: "numeric",
    month: "long",
    ...(sameYear ? {} : { year: "numeric" }),
  });
}

// "to bob" on private messages this user sent, "from alice" on those sent to this user.
function privateLabel(message, me) {
  if (!message.to) return null;
  if (message.from === me) return `to ${message.to}`;
  if (message.to === me) return `from ${message.from}`;
  return `${message.from} to ${message.to}`;
}

// The conversation a message belongs to: "" for everyone, else the other user of a private one.
function conversationOf(message, me) {
  if (!message.to) return "";
  return message.from === me ? message.to : message.from;
}

const characters = (text) => [...text].length; // code points, as the server counts

// Message text as nodes: web addresses become links built from parsed URLs, everything else is
// text. Nothing from a message is ever parsed as HTML.
const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/giu;

function textNodes(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url;
    try {
      url = new URL(match[0]);
    } catch {
      continue;
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") continue;
    nodes.push(document.createTextNode(text.slice(last, match.index)));
    const link = document.createElement("a");
    link.href = url.href;
    link.textContent = match[0];
    link.rel = "noopener noreferrer nofollow";
    link.target = "_blank";
    nodes.push(link);
    last = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

// What went wrong, for a person: the protocol's error codes in words.
function describeChatError(code, message) {
  const to = message?.to;
  switch (code) {
    case "unknown_user":
      return to ? `There is nobody called ${to} here. Check the name and try again.` : "There is nobody by that name here.";
    case "text_too_long":
      return `That message is longer than ${TEXT_LIMIT.toLocaleString("en")} characters. Shorten it and try again.`;
    case "invalid_message":
      return to === undefined
        ? "The server did not accept that request."
        : "That message has nothing a reader would see, or cannot be sent as it is.";
    case "rate_limited":
      return "You are sending faster than the server allows. Wait a moment, then retry.";
    case "internal_error":
      return "The chat server had a problem. Your message was not sent; retry in a moment.";
    case "invalid_json":
    case "unknown_action":
      return "The chat server did not understand this page. Reload it to get the current version.";
    default:
      return "Something went wrong on the chat server. Try again in a moment.";
  }
}

const OFFLINE_REASONS = {
  "the network is offline": "this device has no network connection",
  "connection lost": "the connection to the chat server was lost",
  "could not connect": "the chat server cannot be reached",
  "the chat server does not answer": "the chat server does not answer",
  "sign-in failed": "signing in again did not work yet",
  "no answer to ping": "the chat server stopped answering",
};

// One conversation as the page knows it: messages oldest first, what is unread, who read what.
class Thread {
  constructor(withUser) {
    this.with = withUser; // null: everyone
    this.messages = [];
    this.ids = new Set();
    this.more = true; // older messages may exist (history says when not)
    this.loading = false;
    this.unread = 0;
    this.readUpTo = null;
    this.theirReadUpTo = null;
    this.last = null; // the newest message known, loaded or only named by `inbox`
  }

  get key() {
    return this.with ?? "";
  }

  get newestId() {
    return this.messages.at(-1)?.id ?? "";
  }

  // Adds messages (any order, repeats ignored); true when any was new.
  add(messages) {
    let added = false;
    for (const message of messages) {
      if (!message?.id || this.ids.has(message.id)) continue;
      this.ids.add(message.id);
      this.messages.push(message);
      added = true;
      if (!this.last || message.id > this.last.id) this.last = message;
    }
    // Ids are time-ordered: sorting by id is storage order.
    if (added) this.messages.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return added;
  }

  // Unread from what is loaded: others' messages after the read position.
  countUnread(me) {
    return this.messages.filter((m) => m.from !== me && (!this.readUpTo || m.id > this.readUpTo)).length;
  }
}

class ChatPage {
  constructor(config, session) {
    this.config = config;
    this.session = session; // {username, tokens, cursor, outbox, messages, threads}
    this.me = session.username;
    this.online = new Set();
    this.whoAsked = 0;
    this.threads = new Map();
    this.current = ""; // the key of the conversation on screen
    this.failed = new Map(); // clientMsgId → the message the server refused
    this.typingTimer = null;
    this.lastTypingSent = 0;
    this.list = $("message-list");
    this.state = new ChatState(this.me, {
      cursor: session.cursor,
      outbox: session.outbox ?? [],
      seenIds: (session.messages ?? []).map((message) => message.id),
    });
    this.thread(null);
    for (const message of session.messages ?? []) this.thread(conversationOf(message, this.me)).add([message]);
    for (const saved of session.threads ?? []) {
      const thread = this.thread(saved.with);
      const { last, ...rest } = savedThread(saved);
      Object.assign(thread, rest);
      if (last && (!thread.last || last.id > thread.last.id)) thread.last = last;
    }
    this.auth = new Auth(config, session.tokens, (tokens) => this.save({ tokens }));
    this.connection = new Connection({ config, auth: this.auth, state: this.state, onEvent: (e) => this.onEvent(e) });
  }

  thread(withUser) {
    const key = withUser || "";
    if (!this.threads.has(key)) this.threads.set(key, new Thread(withUser || null));
    return this.threads.get(key);
  }

  show() {
    $("sign-in-view").hidden = true;
    $("chat-view").hidden = false;
    $("current-user").textContent = this.me;
    this.listen();
    this.open(this.session.current ?? "", { screen: "thread" });
    this.showConversations();
    this.connection.start();
    $("message-input").focus();
  }

  listen() {
    const on = (target, type, handler) => {
      target.addEventListener(type, handler);
      this.unlisten.push(() => target.removeEventListener(type, handler));
    };
    this.unlisten = [];
    on($("composer"), "submit", (event) => this.onSubmit(event));
    on($("message-input"), "input", () => this.onInput());
    on($("sign-out"), "click", () => this.signOut());
    on($("back-button"), "click", () => this.showScreen("list"));
    on(this.list, "scroll", () => this.onScroll());
    on(this.list, "click", (event) => this.onListClick(event));
    on($("conversation-list"), "click", (event) => this.onPick(event));
    on($("online-users"), "click", (event) => this.onPick(event));
    on(document, "visibilitychange", () => this.markRead());
    on(window, "online", () => this.connection.reconnectNow());
    on(window, "offline", () => this.connection.drop());
  }

  close() {
    for (const undo of this.unlisten) undo();
    clearTimeout(this.typingTimer);
    clearTimeout(this.readTimer);
    clearInterval(this.countdown);
    this.connection.stop();
    this.auth.stop();
  }

  // The refresh token is revoked first (a copy of it stops working), then the tab forgets it.
  async signOut(reason = "") {
    const button = $("sign-out");
    button.disabled = true;
    try {
      await withTimeout(revokeRefreshToken(this.config, this.auth.tokens), 5000);
    } catch {
      // Offline or refused: the tab forgets the session anyway; it expires with its token.
    } finally {
      button.disabled = false;
    }
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

  // -- the user's actions

  onSubmit(event) {
    event.preventDefault();
    const input = $("message-input");
    const command = parseInput(input.value, this.thread(this.current).with);
    if (!command) return;
    if (command.say && characters(command.say.text) > TEXT_LIMIT) {
      const over = characters(command.say.text) - TEXT_LIMIT;
      return this.showNotice(`That message is ${over.toLocaleString("en")} characters too long. Shorten it to send it.`, "error");
    }
    input.value = "";
    this.onInput();
    if (command.invalid) return this.showNotice(command.invalid, "error");
    if (command.open) return this.open(command.open, { screen: "thread" });
    if (command.who) {
      this.whoAsked += 1;
      return this.connection.send({ action: "who" });
    }
    const message = this.state.compose(command.say.text, command.say.to);
    // `/msg bob hi` from another conversation: sent from here, shown in the one with bob (the
    // next plain line still goes where the user is).
    const key = conversationOf({ ...message, from: this.me }, this.me);
    this.thread(key);
    if (key !== this.current) {
      this.showNotice(`Sending privately to ${key}: it is in your conversation with ${key}.`);
      this.showConversations();
    } else this.renderThread({ toBottom: true });
    for (const frame of this.state.nextSends()) this.connection.send(frame); // offline, it waits in the outbox
    this.persist();
  }

  // The counter near the limit, and `typing` (at most every 3 s) in a private conversation.
  onInput() {
    const value = $("message-input").value;
    const command = parseInput(value, this.thread(this.current).with);
    const length = command?.say ? characters(command.say.text) : characters(value.trim());
    const counter = $("char-counter");
    counter.hidden = length < COUNTER_FROM;
    counter.classList.toggle("over", length > TEXT_LIMIT);
    counter.textContent =
      length > TEXT_LIMIT
        ? `${(length - TEXT_LIMIT).toLocaleString("en")} characters too many`
        : `${(TEXT_LIMIT - length).toLocaleString("en")} characters left`;
    $("send-button").disabled = length > TEXT_LIMIT;
    const partner = this.thread(this.current).with;
    if (partner && value.trim() && !value.startsWith("/") && Date.now() - this.lastTypingSent >= TYPING_EVERY_MS) {
      this.lastTypingSent = Date.now();
      this.connection.send({ action: "typing", to: partner });
    }
  }

  onPick(event) {
    const button = event.target.closest("button[data-with]");
    if (button) this.open(button.dataset.with, { screen: "thread" });
  }

  onListClick(event) {
    const button = event.target.closest('[data-testid="retry"]');
    if (!button) return;
    const message = this.failed.get(button.dataset.clientMsgId);
    if (!message) return;
    this.failed.delete(message.clientMsgId);
    const sends = this.state.resend(message);
    this.renderThread({ toBottom: true });
    for (const frame of sends) this.connection.send(frame);
    this.persist();
  }

  // Near the top of the thread: the next older page, if there is one.
  onScroll() {
    if (this.list.scrollTop < 80) this.loadOlder();
  }

  loadOlder() {
    const thread = this.thread(this.current);
    if (!thread.more || thread.loading || this.socketState !== "online") return;
    thread.loading = true;
    const frame = { action: "history", limit: PAGE_SIZE };
    if (thread.with) frame.with = thread.with;
    if (thread.messages.length) frame.before = thread.messages[0].id;
    this.connection.send(frame);
  }

  // Shows one conversation; on a phone, `screen` says whether the thread comes up too.
  open(withUser, { screen } = {}) {
    if (withUser && (withUser === this.me || !USERNAME_RE.test(withUser))) withUser = "";
    this.current = withUser || "";
    this.save({ current: this.current });
    const thread = this.thread(this.current);
    $("thread-title").textContent = thread.with ? thread.with : "Everyone";
    $("message-input").placeholder = thread.with
      ? `Message ${thread.with} privately`
      : "Message everyone · /msg user text · /who";
    this.showTyping(null);
    $("notices").replaceChildren(); // they were about the conversation left
    this.renderThread({ toBottom: true });
    this.showConversations();
    if (screen) this.showScreen(screen);
    if (thread.messages.length < PAGE_SIZE) this.loadOlder();
    this.markRead();
  }

  showScreen(screen) {
    $("chat-view").dataset.screen = screen;
    if (screen === "thread") this.markRead();
  }

  // The thread on screen is read up to its newest message: tell the server (every device of
  // this user clears its badge) unless the read position is there already.
  markRead() {
    const thread = this.thread(this.current);
    if (document.visibilityState === "hidden") return;
    if (matchMedia("(max-width: 640px)").matches && $("chat-view").dataset.screen !== "thread") return;
    const newest = thread.messages.at(-1);
    const hadUnread = thread.unread > 0;
    thread.unread = 0;
    if (hadUnread) this.showConversations();
    if (!newest || (thread.readUpTo && newest.id <= thread.readUpTo)) return;
    const frame = { action: "read", upTo: newest.id };
    if (thread.with) frame.with = thread.with;
    if (!this.connection.send(frame)) return; // offline: sent when back (on `inbox`)
    thread.readUpTo = newest.id;
    this.persist();
  }

  // -- frames from the server

  onEvent(event) {
    const handler = {
      message: () => this.onMessage(event),
      ack: () => this.persist(),
      synced: () => this.onSynced(event),
      who: () => this.onWho(event),
      presence: () => this.onPresence(event),
      history: () => this.onHistory(event),
      inbox: () => this.onInbox(event),
      typing: () => this.onTyping(event),
      read: () => this.onRead(event),
      error: () => this.onError(event),
      connection: () => this.showState(event),
      "signed-out": () => this.leave(event.kind),
    }[event.type];
    handler?.();
  }

  onMessage(message) {
    const key = conversationOf(message, this.me);
    const thread = this.thread(key);
    if (!thread.add([message])) return;
    if (message.from !== this.me) {
      // Read once a busy thread settles for a moment, not once per message (`read` has a budget).
      if (key === this.current && this.reading()) {
        clearTimeout(this.readTimer);
        this.readTimer = setTimeout(() => this.markRead(), READ_SETTLE_MS);
      }
      else if (!thread.readUpTo || message.id > thread.readUpTo) thread.unread += 1;
      if (key === this.current) this.showTyping(null);
    }
    if (key === this.current) {
      this.renderThread();
      if (message.from !== this.me) this.announce(`${message.from}: ${message.text}`);
    }
    this.showConversations();
    const messages = [...(this.session.messages ?? []), message]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(-KEPT_MESSAGES);
    this.save({ messages });
  }

  reading() {
    if (document.visibilityState === "hidden") return false;
    return !matchMedia("(max-width: 640px)").matches || $("chat-view").dataset.screen === "thread";
  }

  onSynced(event) {
    if (!event.complete) this.showNotice("Some messages from while you were away are past retention and gone.");
    this.persist();
  }

  onHistory(event) {
    const thread = this.thread(event.with);
    thread.loading = false;
    thread.more = Boolean(event.more);
    const distanceFromBottom = this.list.scrollHeight - this.list.scrollTop;
    const added = thread.add((event.messages ?? []).map((m) => ({ type: "message", ...m })));
    this.state.learnStored(event.messages ?? []);
    if (thread.key !== this.current) return this.showConversations();
    if (added) {
      this.renderThread();
      // Older messages went in above: keep what the user was looking at where it was.
      this.list.scrollTop = this.list.scrollHeight - distanceFromBottom;
    } else this.renderEmptyState();
    this.showConversations();
    this.markRead();
    // A page that does not fill the screen yet: the next one, until there is no more.
    if (thread.more && this.list.scrollHeight <= this.list.clientHeight) this.loadOlder();
  }

  onInbox(event) {
    for (const entry of event.conversations ?? []) {
      const thread = this.thread(entry.with);
      if (entry.last) thread.last = !thread.last || entry.last.id > thread.last.id ? entry.last : thread.last;
      thread.readUpTo = maxId(thread.readUpTo, entry.readUpTo);
      thread.theirReadUpTo = maxId(thread.theirReadUpTo, entry.theirReadUpTo);
      thread.unread = Number(entry.unread) || 0;
    }
    this.showConversations();
    if (this.reading()) this.markRead();
    this.renderSeen();
    this.persist();
  }

  onTyping(event) {
    if (!event.from || event.from === this.me) return;
    if (event.from === this.current) this.showTyping(event.from);
  }

  showTyping(user) {
    clearTimeout(this.typingTimer);
    $("typing").textContent = user ? `${user} is typing…` : "";
    if (user) this.typingTimer = setTimeout(() => this.showTyping(null), TYPING_SHOWN_MS);
  }

  // Another device of ours read a conversation (its badge clears here too), or the other user of a
  // private conversation read ours ("Seen").
  onRead(event) {
    if (event.user === this.me) {
      const thread = this.thread(event.with);
      thread.readUpTo = maxId(thread.readUpTo, event.upTo);
      thread.unread = thread.countUnread(this.me);
    } else if (event.user) {
      const thread = this.thread(event.user);
      thread.theirReadUpTo = maxId(thread.theirReadUpTo, event.upTo);
      if (thread.key === this.current) this.renderSeen();
    }
    this.showConversations();
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
    const sent = event.sent;
    if (sent) {
      this.failed.set(sent.clientMsgId, { ...sent, error: describeChatError(event.code, sent) });
      if (conversationOf({ ...sent, from: this.me }, this.me) === this.current) this.renderThread();
      this.showNotice(describeChatError(event.code, sent), "error");
    } else if (event.code === "internal_error") {
      this.showNotice(describeChatError(event.code), "error");
    }
    // The rest answer the page's own background requests (`read`, `typing`, `history`; a server
    // without them; a budget spent): nothing the user can act on.
    this.persist();
  }

  persist() {
    const threads = [...this.threads.values()].map((t) => ({
      with: t.with,
      unread: t.unread,
      readUpTo: t.readUpTo,
      theirReadUpTo: t.theirReadUpTo,
      last: t.last,
    }));
    this.save({ cursor: this.state.cursor, outbox: [...this.state.outbox.values()], threads });
  }

  save(changes) {
    Object.assign(this.session, changes);
    store(this.session);
  }

  // -- drawing

  // The conversation on screen, from what is known: day separators, runs of one sender grouped,
  // then what is still being sent and what failed.
  renderThread({ toBottom = false } = {}) {
    const atBottom = toBottom || this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 48;
    const thread = this.thread(this.current);
    const waiting = [...this.state.outbox.values(), ...this.failed.values()].filter(
      (m) => conversationOf({ ...m, from: this.me }, this.me) === this.current,
    );
    const items = [];
    let previous = null;
    for (const message of [...thread.messages, ...waiting]) {
      const ms = message.id ? msOf(message.sentAt) : Date.now();
      const newDay = !previous || dayKey(previous.ms) !== dayKey(ms);
      if (newDay) items.push(this.daySeparator(ms));
      const grouped = !newDay && previous.from === (message.from ?? this.me) && ms - previous.ms < GROUP_WITHIN_MS;
      items.push(message.id ? this.messageItem(message, grouped) : this.waitingItem(message, grouped));
      previous = { from: message.from ?? this.me, ms };
    }
    this.list.replaceChildren(...items);
    this.renderSeen();
    this.renderEmptyState();
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  renderEmptyState() {
    const thread = this.thread(this.current);
    const empty = !this.list.querySelector('[data-testid="message"]');
    const note = $("empty-state");
    note.hidden = !empty;
    if (!empty) return;
    note.textContent = thread.with
      ? `This is the start of your private conversation with ${thread.with}. Only the two of you see it: write below.`
      : "No messages yet. Write below to talk to everyone, pick someone in the Online list to talk privately, or type /msg and a name.";
  }

  // "Seen" under the last message of ours the other user has read (private conversations only).
  renderSeen() {
    const thread = this.thread(this.current);
    for (const mark of this.list.querySelectorAll('[data-testid="seen"]')) mark.hidden = true;
    if (!thread.with || !thread.theirReadUpTo) return;
    const mine = thread.messages.filter((m) => m.from === this.me && m.id <= thread.theirReadUpTo).at(-1);
    const item = mine && this.list.querySelector(`[data-testid="message"][data-id="${CSS.escape(mine.id)}"]`);
    if (item) $("seen", item).hidden = false;
  }

  daySeparator(ms) {
    const item = document.createElement("li");
    item.className = "day";
    item.dataset.testid = "day-separator";
    const label = document.createElement("span");
    label.textContent = dayName(ms);
    item.append(label);
    return item;
  }

  messageItem(message, grouped) {
    const item = this.newMessageItem();
    this.fillMessage(item, message, grouped);
    return item;
  }

  waitingItem(message, grouped) {
    const item = this.newMessageItem();
    this.fillMessage(item, { ...message, from: this.me, id: "", sentAt: null }, grouped);
    item.dataset.text = message.text;
    if (message.error) {
      item.classList.add("failed");
      $("message-status", item).textContent = "Not sent";
      const reason = document.createElement("p");
      reason.className = "failure";
      reason.dataset.testid = "failure";
      reason.textContent = message.error;
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "retry";
      retry.dataset.testid = "retry";
      retry.dataset.clientMsgId = message.clientMsgId;
      retry.textContent = "Retry";
      reason.append(" ", retry);
      item.append(reason);
    } else {
      item.dataset.pending = "true";
      item.classList.add("pending");
      $("message-status", item).textContent = "sending…";
    }
    return item;
  }

  findPending(clientMsgId) {
    return [...this.list.querySelectorAll('[data-pending="true"]')].find((item) => item.dataset.clientMsgId === clientMsgId);
  }

  newMessageItem() {
    return document.getElementById("message-template").content.firstElementChild.cloneNode(true);
  }

  fillMessage(item, message, grouped = false) {
    const label = privateLabel(message, this.me);
    const mine = message.from === this.me;
    Object.assign(item.dataset, {
      id: message.id ?? "",
      clientMsgId: message.clientMsgId ?? "",
      kind: message.to ? "private" : "public",
      from: message.from,
      to: message.to ?? "",
      pending: "false",
    });
    item.classList.toggle("private", Boolean(message.to));
    item.classList.toggle("mine", mine);
    item.classList.toggle("grouped", grouped);
    $("message-from", item).textContent = mine ? `${message.from} (you)` : message.from;
    $("message-label", item).textContent = label ?? "";
    $("message-label", item).hidden = !label;
    $("message-time", item).textContent = timeOf(message.sentAt);
    if (message.sentAt) $("message-time", item).dateTime = message.sentAt;
    $("message-text", item).replaceChildren(...textNodes(message.text ?? ""));
  }

  // Screen readers hear new messages of the conversation on screen (the list itself is redrawn).
  announce(text) {
    $("announcer").textContent = text;
  }

  showNotice(text, kind = "notice") {
    const item = document.createElement("li");
    item.className = `notice ${kind}`;
    item.dataset.testid = kind === "error" ? "error" : "notice";
    item.textContent = text;
    const notices = $("notices");
    notices.append(item);
    while (notices.children.length > 3) notices.firstElementChild.remove();
  }

  // Everyone and one entry per private partner, newest first, each with its unread count.
  showConversations() {
    const threads = [...this.threads.values()].sort((a, b) => {
      const [x, y] = [a.last?.id ?? "", b.last?.id ?? ""];
      return x === y ? (a.with === null ? -1 : 1) : x > y ? -1 : 1;
    });
    const items = threads.map((thread) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "conversation";
      button.dataset.testid = "conversation";
      button.dataset.with = thread.key;
      if (thread.key === this.current) button.setAttribute("aria-current", "true");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = thread.with ?? "Everyone";
      const preview = document.createElement("span");
      preview.className = "preview";
      preview.dir = "auto";
      preview.textContent = thread.last ? `${thread.last.from === this.me ? "You" : thread.last.from}: ${thread.last.text}` : "";
      button.append(name, preview);
      if (thread.unread > 0) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.dataset.testid = "unread-badge";
        badge.textContent = thread.unread >= 100 ? "99+" : String(thread.unread);
        badge.setAttribute("aria-label", `${thread.unread >= 100 ? "100 or more" : thread.unread} unread`);
        button.append(badge);
      }
      item.append(button);
      return item;
    });
    $("conversation-list").replaceChildren(...items);
  }

  showOnline() {
    const items = [...this.online].sort().map((user) => {
      const item = document.createElement("li");
      item.dataset.testid = "online-user";
      item.dataset.user = user;
      if (user === this.me) {
        item.textContent = `${user} (you)`;
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "person";
        button.dataset.with = user;
        button.textContent = user;
        button.title = `Message ${user} privately`;
        item.append(button);
      }
      return item;
    });
    $("online-users").replaceChildren(...items);
    $("online-count").textContent = String(this.online.size);
  }

  showState(event) {
    const indicator = $("connection-state");
    indicator.dataset.state = event.state;
    this.socketState = event.state;
    clearInterval(this.countdown);
    // The online list is only as fresh as the connection: greyed, and saying why, while offline.
    const stale = event.state !== "online";
    $("people").classList.toggle("stale", stale);
    $("online-stale").hidden = !stale;
    if (event.state === "online") {
      indicator.textContent = "Online";
      for (const thread of this.threads.values()) thread.loading = false;
      if (this.thread(this.current).messages.length < PAGE_SIZE) this.loadOlder();
    } else if (event.state === "connecting") {
      indicator.textContent = "Connecting…";
      $("online-stale").textContent = "Connecting: this list may be out of date.";
    } else this.countDown(indicator, event);
  }

  countDown(indicator, event) {
    const why = OFFLINE_REASONS[event.reason] ?? "the connection to the chat server is closed";
    $("online-stale").textContent = `Not updated while offline (${why}): this is who was online before.`;
    const draw = () => {
      const seconds = Math.max(0, Math.ceil((event.retryAt - Date.now()) / 1000));
      indicator.textContent = `Offline: ${why} · retrying in ${seconds}s`;
    };
    draw();
    this.countdown = setInterval(draw, 1000);
  }
}

function maxId(a, b) {
  if (!a) return b ?? null;
  if (!b) return a;
  return a > b ? a : b;
}

// A thread's saved summary, as far as it is well-formed (sessionStorage is the tab's own, but old).
function savedThread(saved) {
  return {
    unread: Number(saved.unread) || 0,
    readUpTo: typeof saved.readUpTo === "string" ? saved.readUpTo : null,
    theirReadUpTo: typeof saved.theirReadUpTo === "string" ? saved.theirReadUpTo : null,
    last: saved.last && typeof saved.last.id === "string" ? saved.last : null,
  };
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms))]);
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

// Installable: the worker keeps the page's own files for a start without network (never messages).
function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("sw.js").catch(() => {}); // an old browser or a file:// page: fine without
}

async function main() {
  registerWorker();
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
