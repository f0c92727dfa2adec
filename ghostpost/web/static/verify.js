// Checks a verify answer in the browser: steps 1–6 of docs/verify-answer.md, the same steps as
// `ghostpost audit verify-post`. Only WebCrypto (SHA-256, Ed25519); no library, no network.
//
// The page embeds the answer (<script type="application/json" id="verify-answer">) and the log's
// published verifier key (id "verify-log-key"); the answer's own `verifier_key` is never trusted.
// The pure functions are on window.GhostpostVerify (the browser tests call them).
(function () {
  "use strict";

  const LEAF_FORMAT = "ghostpost-leaf/v1";
  const WRITER_COMMIT_TAG = "ghostpost-writer-commit/v1\u0000";
  const ED25519 = 0x01;
  const HASH_BYTES = 32;
  const MAX_PROOF_HASHES = 64;
  const MAX_SIGNATURES = 100;
  const MAX_TREE_SIZE = (1n << 64n) - 1n;
  const utf8 = new TextEncoder();

  class StepError extends Error {
    constructor(step, message) {
      super(message);
      this.step = step;
    }
  }

  function fail(step, message) {
    throw new StepError(step, message);
  }

  // --- bytes ---------------------------------------------------------------------------------

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  function equalBytes(a, b) {
    return a.length === b.length && a.every((byte, i) => byte === b[i]);
  }

  function toBase64(bytes) {
    return btoa(String.fromCharCode(...bytes));
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Standard, padded base64 in its one canonical spelling, or null (as the Python side refuses
  // non-canonical encodings, so one signature or hash has one spelling).
  function fromBase64(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
      return null;
    }
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return toBase64(bytes) === text ? bytes : null;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // RFC 9162 §2.1.1: leaf and interior node hashes carry distinct prefixes (0x00, 0x01).
  const leafHash = (data) => sha256(concat(Uint8Array.of(0x00), data));
  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(0x01), left, right));

  // --- C2SP signed notes (c2sp.org/signed-note) ----------------------------------------------

  // Key names are non-empty, with no Unicode spaces and no "+".
  const isKeyName = (name) => name.length > 0 && !/[\s+]/u.test(name);

  // The spec's Ed25519 key id: SHA-256(name || 0x0A || 0x01 || public key)[:4].
  async function keyIdOf(name, publicKey) {
    const digest = await sha256(concat(utf8.encode(name + "\n"), Uint8Array.of(ED25519), publicKey));
    return digest.slice(0, 4);
  }

  // A verifier key is name+hex(key id)+base64(0x01 || 32-byte public key). Only the first two
  // "+" separate the parts (names hold none; base64 may).
  async function parseVerifierKey(text) {
    const match = typeof text === "string" ? /^([^+]*)\+([^+]*)\+(.*)$/su.exec(text) : null;
    if (!match) fail(1, "the log's key is not name+keyid+key");
    const [, name, hexId, material] = match;
    if (!isKeyName(name)) fail(1, "the log's key has no valid name");
    if (!/^[0-9a-f]{8}$/.test(hexId)) fail(1, "the log's key id is not 8 lower-case hex digits");
    const bytes = fromBase64(material);
    if (!bytes || bytes.length !== 33 || bytes[0] !== ED25519) {
      fail(1, "the log's key is not an Ed25519 key (type 0x01 and 32 bytes)");
    }
    const publicKey = bytes.slice(1);
    if (toHex(await keyIdOf(name, publicKey)) !== hexId) {
      fail(1, "the log's key id does not match its name and key");
    }
    return { name, keyId: hexId, publicKey };
  }

  // A note is: text ending in "\n", a blank line, then lines "— <name> <base64(id || sig)>".
  // The text ends at the last blank line; nothing but "\n" may be a control character.
  function parseNote(message) {
    if (typeof message !== "string") fail(2, "the checkpoint is not text");
    if (/[\u0000-\u0009\u000b-\u001f]/.test(message)) {
      fail(2, "the checkpoint contains control characters");
    }
    const split = message.lastIndexOf("\n\n");
    if (split < 0) fail(2, "the checkpoint has no blank line before its signatures");
    const text = message.slice(0, split + 1);
    const block = message.slice(split + 2);
    if (!block.endsWith("\n")) fail(2, "the checkpoint does not end with signature lines");
    const lines = block.slice(0, -1).split("\n");
    if (lines.length > MAX_SIGNATURES) fail(2, "the checkpoint carries too many signatures");
    const signatures = lines.map((line) => {
      const match = /^\u2014 (\S+) (\S+)$/u.exec(line);
      const blob = match && fromBase64(match[2]);
      if (!match || !isKeyName(match[1]) || !blob || blob.length < 5) {
        fail(2, "a signature line is not: em dash, space, key name, space, base64");
      }
      return { name: match[1], keyId: toHex(blob.slice(0, 4)), signature: blob.slice(4) };
    });
    return { text, signatures };
  }

  async function verifyEd25519(publicKey, signature, message) {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }

  // The spec's rules with one known key: other keys' signatures are ignored; the known key's
  // signature must verify; a note the known key did not sign is refused.
  async function openNote(message, key) {
    const note = parseNote(message);
    const mine = note.signatures.filter((s) => s.name === key.name && s.keyId === key.keyId);
    if (mine.length === 0) fail(2, `the checkpoint is not signed by the log's key ${key.name}+${key.keyId}`);
    // Repeated signatures of one key count once (as open_note does): the first is checked.
    let valid = false;
    try {
      valid = await verifyEd25519(key.publicKey, mine[0].signature, utf8.encode(note.text));
    } catch (error) {
      if (error.name === "NotSupportedError") throw error; // the browser's limit, not the proof's
      fail(2, `the log's key or the signature is not usable Ed25519 (${error.name})`);
    }
    if (!valid) fail(2, "the checkpoint's signature by the log's key does not verify");
    return note.text;
  }

  // A tlog checkpoint (c2sp.org/tlog-checkpoint): origin, decimal size without leading zeros,
  // standard base64 of the 32-byte root, then optional extension lines.
  function parseCheckpoint(text) {
    const lines = text.slice(0, -1).split("\n");
    if (lines.length < 3) fail(2, "the checkpoint has no origin, size and root lines");
    const [origin, sizeText, rootText] = lines;
    if (!/^(0|[1-9][0-9]{0,19})$/.test(sizeText) || BigInt(sizeText) > MAX_TREE_SIZE) {
      fail(2, "the checkpoint's size is not a decimal number without leading zeros");
    }
    const root = fromBase64(rootText);
    if (!root || root.length !== HASH_BYTES) fail(2, "the checkpoint's root is not base64 of 32 bytes");
    if (lines.slice(3).some((line) => line === "")) fail(2, "the checkpoint has an empty line");
    return { origin, size: BigInt(sizeText), root };
  }

  // --- RFC 9162 §2.1.3.2: verifying an inclusion proof ----------------------------------------

  // `index` and `size` are BigInts (sizes reach 2^64 - 1; JS's `>>` works on 32 bits only).
  // Returns whether the proof leads from the leaf hash to the root.
  async function verifyInclusion(leaf, index, size, proof, root) {
    if ([leaf, root, ...proof].some((h) => h.length !== HASH_BYTES)) return false;
    if (proof.length > MAX_PROOF_HASHES || size > MAX_TREE_SIZE) return false;
    // 1. leaf_index >= tree_size: fail.
    if (index < 0n || index >= size) return false;
    // 2. fn = leaf_index, sn = tree_size - 1, r = the leaf hash.
    let fn = index;
    let sn = size - 1n;
    let r = leaf;
    // 3. For each p in the proof:
    for (const p of proof) {
      // a. sn == 0: the proof is too long.
      if (sn === 0n) return false;
      if (fn % 2n === 1n || fn === sn) {
        // b. p is the left sibling: r = HASH(0x01 || p || r); if fn is even (fn == sn, a
        //    right-edge node with no sibling), shift until fn is odd or 0.
        r = await nodeHash(p, r);
        while (fn % 2n === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      } else {
        // c. p is the right sibling: r = HASH(0x01 || r || p).
        r = await nodeHash(r, p);
      }
      // d. Shift both one level up.
      fn >>= 1n;
      sn >>= 1n;
    }
    // 4. Accept iff the proof was used up exactly (sn == 0) and r is the root.
    return sn === 0n && equalBytes(r, root);
  }

  // --- the answer: docs/verify-answer.md, steps 1–6 -----------------------------------------

  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const same = (a, b) => a !== undefined && JSON.stringify(a) === JSON.stringify(b);

  // Checks `answer` (parsed JSON) against the log's verifier key text. Returns {ok: true} or
  // {ok: false, step, message}; never throws for a bad answer.
  async function checkAnswer(answer, logKeyText) {
    try {
      await checkSteps(answer, logKeyText);
      return { ok: true };
    } catch (error) {
      if (error instanceof StepError) return { ok: false, step: error.step, message: error.message };
      // Not the answer's fault: e.g. a browser without Ed25519 in WebCrypto (before Chrome 137,
      // Firefox 129, Safari 17).
      return { ok: false, step: null, message: `your browser could not run the check (${error})` };
    }
  }

  async function checkSteps(answer, logKeyText) {
    const proof = isObject(answer) ? answer.proof : null;
    if (!isObject(proof)) fail(1, "the answer carries no proof");

    // 1. The log's key (the page's, not the answer's); its name is the log's origin.
    const key = await parseVerifierKey(logKeyText);

    // 2. The checkpoint is a note signed by that key, and a checkpoint of that origin.
    const checkpoint = parseCheckpoint(await openNote(proof.checkpoint, key));
    if (checkpoint.origin !== key.name) {
      fail(2, `the checkpoint is for the log "${checkpoint.origin}", not "${key.name}"`);
    }

    // 3. The proof is about that tree, and the leaf is inside it.
    const { tree_size: treeSize, leaf_index: leafIndex } = proof;
    if (!Number.isSafeInteger(treeSize) || BigInt(treeSize) !== checkpoint.size) {
      fail(3, `tree_size ${treeSize} is not the checkpoint's size ${checkpoint.size}`);
    }
    if (!Number.isSafeInteger(leafIndex) || leafIndex < 0 || leafIndex >= treeSize) {
      fail(3, `leaf_index ${leafIndex} is not inside a tree of ${treeSize} leaves`);
    }

    // 4. The leaf bytes hash to a leaf whose audit path leads to the signed root.
    if (typeof proof.leaf !== "string") fail(4, "the leaf is not text");
    const inclusion = Array.isArray(proof.inclusion) ? proof.inclusion.map(fromBase64) : [null];
    if (inclusion.some((h) => !h || h.length !== HASH_BYTES)) {
      fail(4, "the inclusion proof is not a list of base64 32-byte hashes");
    }
    const hashed = await leafHash(utf8.encode(proof.leaf));
    if (!(await verifyInclusion(hashed, BigInt(leafIndex), checkpoint.size, inclusion, checkpoint.root))) {
      fail(4, "the inclusion proof does not lead from the leaf to the checkpoint's root");
    }

    // 5. The leaf (now known to be in the log) says what the answer says.
    let leaf;
    try {
      leaf = JSON.parse(proof.leaf);
    } catch (error) {
      fail(5, "the leaf is not JSON");
    }
    const post = isObject(answer.post) ? answer.post : {};
    const url = typeof answer.url === "string" ? answer.url.trim() : undefined;
    if (!isObject(leaf) || leaf.v !== LEAF_FORMAT) fail(5, `the leaf is not a ${LEAF_FORMAT} leaf`);
    if (leaf.tag !== "post:published") fail(5, "the leaf is not a published post");
    if (leaf.seq !== leafIndex + 1) fail(5, `the leaf's seq ${leaf.seq} is not leaf_index + 1`);
    if (!same(leaf.platform_url, post.platform_url) || !same(leaf.platform_url, url)) {
      fail(5, "the leaf is about another post URL than the answer");
    }
    if (!same(leaf.authorship, answer.verdict)) {
      fail(5, `the leaf says "${leaf.authorship}" wrote it, the answer says "${answer.verdict}"`);
    }
    if (!same(leaf.disclosure, post.disclosure)) {
      fail(5, "the leaf's disclosure is not the answer's");
    }

    // 6. An auditor's answer names the writer: its disclosure must open the leaf's commitment.
    if (answer.writer !== null && answer.writer !== undefined) {
      const disclosure = isObject(answer.writer) ? answer.writer.writer_disclosure : undefined;
      if (typeof disclosure !== "string") fail(6, "the writer's disclosure is missing");
      const commit = toHex(await sha256(utf8.encode(WRITER_COMMIT_TAG + disclosure)));
      if (commit !== leaf.writer_commit) fail(6, "the writer's disclosure does not open the leaf's writer commitment");
    }
  }

  window.GhostpostVerify = { checkAnswer, verifyInclusion, parseVerifierKey, fromBase64, leafHash };

  // --- the page -----------------------------------------------------------------------------

  async function checkPage() {
    const answerNode = document.getElementById("verify-answer");
    const keyNode = document.getElementById("verify-log-key");
    const status = document.getElementById("proof-status");
    if (!answerNode || !keyNode || !status) return;
    const result = await checkAnswer(JSON.parse(answerNode.textContent), JSON.parse(keyNode.textContent));
    status.classList.remove("pending");
    if (result.ok) {
      status.textContent = "Proof checked in your browser";
      status.classList.add("ok");
    } else if (result.step === null) {
      status.textContent = `Proof not checked: ${result.message}. Use ghostpost audit verify-post.`;
      status.classList.add("failed");
    } else {
      status.textContent = `Proof check failed at step ${result.step}: ${result.message}`;
      status.classList.add("failed");
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", checkPage);
  } else {
    checkPage();
  }
})();
