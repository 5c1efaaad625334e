// Signing in: OpenID Connect's authorization-code flow with PKCE (RFC 7636), as a
// single-page application does it with Entra ID (the same endpoints MSAL.js uses:
// {authority}/oauth2/v2.0/authorize and /token). On the local stack the same code runs
// against its stand-in.
//
// What is kept where: the PKCE verifier and state only between leaving for the sign-in page
// and coming back; tokens and the refresh token in sessionStorage (this tab only, gone when it
// closes: MSAL.js's default), never in a URL (the one-use code is removed from the address
// bar at once) and never in localStorage.

const PENDING = "airlock.signin";
const REFRESH = "airlock.refresh";
const TOKENS = "airlock.tokens";

function base64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

/** Where the identity provider sends people back: this page, without query or hash. */
export function redirectUri() {
  return location.origin + location.pathname;
}

/** Leaves for the identity provider's sign-in page. */
export async function signIn(config, returnTo) {
  const verifier = randomText(48);
  const challenge = base64url(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)),
  );
  const state = randomText(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const params = new URLSearchParams({
    client_id: config.clientId,
    response_type: "code",
    redirect_uri: redirectUri(),
    response_mode: "query",
    scope: `openid profile offline_access ${config.apiScope}`,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  location.assign(`${config.authority}/oauth2/v2.0/authorize?${params}`);
}

async function tokenRequest(config, form) {
  const response = await fetch(`${config.authority}/oauth2/v2.0/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: config.clientId, ...form }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.error_description || body.error || `sign-in failed (${response.status})`);
  }
  if (body.refresh_token) sessionStorage.setItem(REFRESH, body.refresh_token);
  const tokens = JSON.parse(sessionStorage.getItem(TOKENS) || "{}");
  tokens[form.scope] = {
    token: body.access_token,
    expires: Date.now() + (Number(body.expires_in) || 300) * 1000,
  };
  sessionStorage.setItem(TOKENS, JSON.stringify(tokens));
  return body.access_token;
}

/**
 * Back from the sign-in page: exchanges the code (checked against the state we sent) and
 * removes it from the address bar. Answers where to go next, or null when not coming back.
 */
export async function completeSignIn(config) {
  const query = new URLSearchParams(location.search);
  if (!query.has("code") && !query.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", redirectUri() + (pending?.returnTo || "#/"));
  if (query.has("error")) {
    throw new Error(query.get("error_description") || query.get("error"));
  }
  if (!pending || pending.state !== query.get("state")) {
    throw new Error("the sign-in answer does not match the sign-in this tab started; sign in again");
  }
  await tokenRequest(config, {
    grant_type: "authorization_code",
    code: query.get("code"),
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
    scope: `openid profile offline_access ${config.apiScope}`,
  });
  return pending.returnTo || "#/";
}

export function signedIn() {
  return sessionStorage.getItem(REFRESH) !== null;
}

/** A token for `scope` (a workspace's, or the API's): the cached one, or a new one. */
export async function token(config, scope) {
  const tokens = JSON.parse(sessionStorage.getItem(TOKENS) || "{}");
  const cached = tokens[scope];
  if (cached && cached.expires > Date.now() + 60_000) return cached.token;
  const refresh = sessionStorage.getItem(REFRESH);
  if (!refresh) throw new Error("not signed in");
  return tokenRequest(config, { grant_type: "refresh_token", refresh_token: refresh, scope });
}

export function signOut() {
  for (const key of [PENDING, REFRESH, TOKENS]) sessionStorage.removeItem(key);
}

/** The claims of a token (for showing who is signed in; the API checks the signature). */
export function claims(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(payload), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    return JSON.parse(json);
  } catch {
    return {};
  }
}
