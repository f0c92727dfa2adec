// masto.js (npm `masto`) as a Mastodon app uses it, against ghostpost's Mastodon face.
// Driven by tests/functional/test_mastodon_clients.py; prints one JSON object on stdout.
//
//   node client.mjs register '{"base": URL, "redirectUri": URI}'
//     registers the app (POST /api/v1/apps) and prepares the sign-in: PKCE verifier, S256
//     challenge and the /oauth/authorize URL a browser opens.
//   node client.mjs run '{"base", "clientId", "clientSecret", "redirectUri", "code",
//                        "codeVerifier", "scheduledAt"}'
//     exchanges the code for the user's token (POST /oauth/token), then posts, schedules,
//     lists and cancels, posts with a content warning, reads the account's statuses, and
//     records the errors for a bad token and an unknown route.
import { createHash, randomBytes } from "node:crypto";
import { createOAuthAPIClient, createRestAPIClient } from "masto";

const SCOPES = "read write";
const [mode, raw] = process.argv.slice(2);
const args = JSON.parse(raw);

/** What a failed call threw, as the test needs it. */
const failure = (error) => ({
  name: error?.constructor?.name,
  statusCode: error?.statusCode ?? null,
  message: error?.message,
  description: error?.description ?? null,
});

/** The call's result, or what it threw. */
const attempt = async (call) => {
  try {
    return { ok: await call() };
  } catch (error) {
    return { error: failure(error) };
  }
};

const base64url = (buffer) => buffer.toString("base64url");

async function register() {
  const anonymous = createRestAPIClient({ url: args.base });
  const app = await anonymous.v1.apps.create({
    clientName: "masto.js test app",
    redirectUris: args.redirectUri,
    scopes: SCOPES,
    website: "https://github.com/neet/masto.js",
  });
  const codeVerifier = base64url(randomBytes(48));
  const challenge = base64url(createHash("sha256").update(codeVerifier).digest());
  const authorize = new URL("/oauth/authorize", args.base);
  authorize.search = new URLSearchParams({
    response_type: "code",
    client_id: app.clientId,
    redirect_uri: args.redirectUri,
    scope: SCOPES,
    state: "masto-state",
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  return {
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    codeVerifier,
    authorizeUrl: authorize.toString(),
  };
}

async function run() {
  const oauth = createOAuthAPIClient({ url: args.base });
  const token = await oauth.token.create({
    grantType: "authorization_code",
    clientId: args.clientId,
    clientSecret: args.clientSecret,
    redirectUri: args.redirectUri,
    code: args.code,
    // Not in masto's types: sent as code_verifier like every other parameter (PKCE).
    codeVerifier: args.codeVerifier,
    scope: SCOPES,
  });
  const masto = createRestAPIClient({ url: args.base, accessToken: token.accessToken });
  const me = await masto.v1.accounts.verifyCredentials();
  const posted = await masto.v1.statuses.create({ status: "Hello from masto.js" });
  const scheduled = await masto.v1.statuses.create({
    status: "Later from masto.js",
    scheduledAt: args.scheduledAt,
  });
  const pending = await masto.v1.scheduledStatuses.list();
  await masto.v1.scheduledStatuses.$select(scheduled.id).remove();
  const pendingAfterCancel = await masto.v1.scheduledStatuses.list();
  const warned = await attempt(() =>
    masto.v1.statuses.create({ status: "Spoilers from masto.js", spoilerText: "Film ending" }),
  );
  // The post goes out once ghostpost's worker takes it from the queue: refresh until it shows.
  let statuses = [];
  for (let tries = 0; tries < 100 && !statuses.some((s) => s.id === posted.id); tries += 1) {
    if (tries) await new Promise((resolve) => setTimeout(resolve, 200));
    statuses = await masto.v1.accounts.$select(me.id).statuses.list({ limit: 40 });
  }
  const stranger = createRestAPIClient({ url: args.base, accessToken: "not-a-real-token" });
  const badToken = await attempt(() => stranger.v1.accounts.verifyCredentials());
  const unknownRoute = await attempt(() => masto.v1.trends.tags.list());
  return {
    token: { tokenType: token.tokenType, scope: token.scope },
    me: { id: me.id, username: me.username },
    posted,
    scheduled,
    pendingIds: pending.map((s) => s.id),
    pendingIdsAfterCancel: pendingAfterCancel.map((s) => s.id),
    warned,
    statuses,
    badToken,
    unknownRoute,
  };
}

const modes = { register, run };
try {
  process.stdout.write(JSON.stringify(await modes[mode]()) + "\n");
} catch (error) {
  process.stderr.write(`${JSON.stringify(failure(error))}\n${error?.stack ?? error}\n`);
  process.exit(1);
}
