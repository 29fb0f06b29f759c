import { readFileSync } from "node:fs";
import { join } from "node:path";
import nock from "nock";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EmbedderConfigSchema, type EmbedderConfig } from "../../src/config/diagnose-config.js";
import { createEmbedder, dot, EmbedderError, HashingEmbedder, OpenAiCompatibleEmbedder } from "../../src/diagnose/embedder.js";
import { charNgrams, logTokens, looksRandom, normaliseLog, splitCamelCase, stripAnsi, wordTokens } from "../../src/diagnose/log-text.js";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "diagnose", "failures");
const fixture = (cause: string, n: number) => readFileSync(join(FIXTURES, cause, `${n}.log`), "utf8");
const labels = JSON.parse(readFileSync(join(FIXTURES, "labels.json"), "utf8")) as { causes: Array<{ id: string; title: string; resolution: string }> };

const norm = (v: number[]) => Math.sqrt(dot(v, v));

describe("log text normalisation", () => {
  it("masks timestamps, ids, addresses, durations and positions but keeps codes and identifiers", () => {
    const s = normaliseLog(
      "2025-03-11T09:14:02.118Z \u001b[31mError\u001b[0m: connect ECONNREFUSED 10.20.4.17:5432 at TCPConnectWrap (node:net:1611:16)\n" +
        "Tue, 18 Feb 2025 14:02:11 +0000 req 3f2b1c9e-1111-4a2b-9c3d-abcdef012345 sha 9f86d081884c exit code 137 after 12.3s\n" +
        "index.ts(47,9): error TS2322 in /tmp/agent-ws-Qm81Zp/infra/src/vpc.ts:112:7 via localhost:6379 v3.116.1",
    );
    for (const gone of ["2025", "09:14", "10.20.4.17", "5432", "1611", "feb", "3f2b1c9e", "9f86d081884c", "12.3", "(47,9)", "qm81zp", "112", "6379", "3.116", "\u001b"]) {
      expect(s).not.toContain(gone);
    }
    expect(s).toContain("econnrefused");
    expect(s).toContain("_ip_");
    expect(s).toContain("_uuid_");
    expect(s).toContain("_hex_");
    expect(s).toContain("_dur_");
    expect(s).toContain("code_137");
    expect(s).toContain("ts2322");
    expect(s).toContain("/tmp/_tmp_/infra/src/vpc.ts");
    expect(s).toContain("localhost _port_");
  });

  it("keeps words that merely look hex-ish and identifiers with digits", () => {
    const tokens = logTokens("defaced bucket in s3 and ec2 via sha256 (TS2307)");
    expect(tokens).toEqual(expect.arrayContaining(["defaced", "s3", "ec2", "sha256", "ts2307"]));
  });

  it("tokenises compounds whole and in parts, and masks random-looking ids", () => {
    const tokens = wordTokens(normaliseLog("creating aws:s3/bucket:Bucket for pod web-x9k2 with key ASIAQ3EXAMPLE7KEY9"));
    expect(tokens).toEqual(expect.arrayContaining(["aws:s3/bucket:bucket", "aws", "s3", "bucket", "web-x9k2", "_id_"]));
    expect(tokens).not.toContain("asiaq3example7key9");
    expect(looksRandom("asiaq3example7key9")).toBe(true);
    expect(looksRandom("postgres14")).toBe(false);
  });

  it("adds the words of CamelCase error codes", () => {
    expect(splitCamelCase("ImagePullBackOff")).toBe("image pull back off");
    expect(splitCamelCase("OOMKilled")).toBe("oom killed");
    expect(splitCamelCase("b0ZqfW1nX3")).toBeNull();
    expect(splitCamelCase("aBcDeF")).toBeNull();
    expect(logTokens("ExpiredToken")).toEqual(["expiredtoken", "expired", "token"]);
  });

  it("builds character n-grams with boundary markers", () => {
    expect(charNgrams("oom", 3, 4)).toEqual(["<oo", "oom", "om>", "<oom", "oom>"]);
    expect(charNgrams("a", 3, 5)).toEqual(["<a>"]);
    expect(stripAnsi("\u001b[1m\u001b[31mred\u001b[39m\u001b[22m")).toBe("red");
  });
});

describe("HashingEmbedder", () => {
  const embedder = new HashingEmbedder();

  it("embeds logs that differ only in timestamps, ids and numbers identically", async () => {
    const a =
      "2025-01-27T15:58:03Z [agent] task 94aa1b0e-2f6d-4c6b-8c0e-77de3a1f5b20 step deploy\n" +
      "error: the stack is currently locked by 1 lock(s).\n" +
      "  s3://state/.pulumi/locks/organization/payments/prod/1f3c9d2e-7b44-4e0a-9a1c-5d6e7f809a1b.json: created by runner@10.0.3.7 (pid 1187) at 2025-01-27T15:58:03Z\n" +
      "[agent] step deploy exited with code 255 after 6.4s (head 4e1f9ac2b7d3, /tmp/ws-Xk29aQ/infra/index.ts:12:5)";
    const b =
      "2026-11-02T01:02:44.901Z [agent] task 0c8f6d21-4e3a-4b9b-a5d2-1e7f9c3b6a40 step deploy\n" +
      "error: the stack is currently locked by 3 lock(s).\n" +
      "  s3://state/.pulumi/locks/organization/payments/prod/a17b0e49-9c5d-47e2-b3f1-6d8a2c4e0f13.json: created by runner@192.168.100.21 (pid 30452) at 2026-11-02T01:00:12Z\n" +
      "[agent] step deploy exited with code 255 after 3m12s (head 0b2d4f6a8c1e, /tmp/ws-Tn40Ld/infra/index.ts:47:9)";
    const [va, vb] = await embedder.embed([a, b]);
    expect(va).toEqual(vb);
    // ...while a change of wording does change the vector (the equality above is not vacuous).
    const [vc] = await embedder.embed([b.replace("currently locked", "currently held")]);
    expect(vc).not.toEqual(vb);
  });

  it("is deterministic across instances and independent of batch composition", async () => {
    const texts = [fixture("out-of-memory", 1), fixture("dns-resolution-failed", 2), fixture("quota-exceeded", 3)];
    const one = await new HashingEmbedder().embed(texts);
    const two = await new HashingEmbedder().embed([texts[2]!, texts[0]!]);
    expect(two[0]).toEqual(one[2]);
    expect(two[1]).toEqual(one[0]);
  });

  it("returns unit vectors of the configured dimension", async () => {
    expect(embedder.dimensions).toBe(1024);
    expect(embedder.name).toBe("hashing-v1-1024");
    const small = new HashingEmbedder({ dimensions: 256 });
    expect(small.name).not.toBe(embedder.name);
    const [v1024] = await embedder.embed([fixture("image-pull-backoff", 1)]);
    const [v256] = await small.embed([fixture("image-pull-backoff", 1)]);
    expect(v1024).toHaveLength(1024);
    expect(v256).toHaveLength(256);
    expect(norm(v1024!)).toBeCloseTo(1, 10);
    expect(norm(v256!)).toBeCloseTo(1, 10);
    // Signed hashing: both signs occur.
    expect(v1024!.some((x) => x < 0)).toBe(true);
    expect(v1024!.some((x) => x > 0)).toBe(true);
    expect(await embedder.embed([])).toEqual([]);
    const [empty] = await embedder.embed([""]);
    expect(empty).toHaveLength(1024);
    expect(empty!.every((x) => x === 0)).toBe(true);
    expect(() => new HashingEmbedder({ dimensions: 0 })).toThrow(EmbedderError);
  });

  it("places logs of one cause closer together than logs of different causes", async () => {
    const ids = labels.causes.map((c) => c.id);
    const vectors = new Map<string, number[][]>();
    for (const id of ids) vectors.set(id, await embedder.embed([1, 2, 3, 4, 5, 6].map((n) => fixture(id, n))));
    let within = 0;
    let between = 0;
    for (const id of ids) {
      const own = vectors.get(id)!;
      const others = ids.filter((o) => o !== id).flatMap((o) => vectors.get(o)!);
      const pairs = own.flatMap((a, i) => own.slice(i + 1).map((b) => dot(a, b)));
      const w = pairs.reduce((s, x) => s + x, 0) / pairs.length;
      const b = own.flatMap((a) => others.map((o) => dot(a, o))).reduce((s, x, _, all) => s + x / all.length, 0);
      expect(w, `cause ${id}`).toBeGreaterThan(b);
      within += w / ids.length;
      between += b / ids.length;
    }
    expect(within).toBeGreaterThan(2 * between);

    // A few concrete queries: the nearest indexed log (first two of each cause) is of the same cause.
    const kb = ids.flatMap((id) => vectors.get(id)!.slice(0, 2).map((v) => ({ id, v })));
    const nearest = (q: number[]) => kb.reduce((best, e) => (dot(q, e.v) > dot(q, best.v) ? e : best)).id;
    expect(nearest(vectors.get("stack-locked")![2]!)).toBe("stack-locked");
    expect(nearest(vectors.get("image-pull-backoff")![2]!)).toBe("image-pull-backoff");
    expect(nearest(vectors.get("test-assertion-failure")![4]!)).toBe("test-assertion-failure");
  });
});

describe("OpenAiCompatibleEmbedder", () => {
  const BASE = "https://embeddings.test";
  const KEY = "sk-test-9f2c0d1e4b7a";
  const make = (over: Partial<ConstructorParameters<typeof OpenAiCompatibleEmbedder>[0]> = {}) =>
    new OpenAiCompatibleEmbedder({ baseUrl: `${BASE}/v1/`, model: "text-embedding-3-small", dimensions: 4, apiKey: KEY, timeoutMs: 2000, ...over });
  const reply = (vectors: number[][], indexes = vectors.map((_, i) => i)) => ({
    object: "list",
    data: vectors.map((embedding, i) => ({ object: "embedding", index: indexes[i], embedding })),
    model: "text-embedding-3-small",
    usage: { prompt_tokens: 8, total_tokens: 8 },
  });

  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    expect(pending).toEqual([]);
  });
  afterAll(() => nock.enableNetConnect());

  /** Awaits a rejection and returns it as an EmbedderError (fails otherwise). */
  async function failure(p: Promise<unknown>): Promise<EmbedderError> {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EmbedderError);
    const e = err as EmbedderError;
    expect(e.message).not.toContain(KEY);
    expect(JSON.stringify({ ...e, stack: e.stack })).not.toContain(KEY);
    return e;
  }

  it("posts model, input and dimensions with the bearer key and L2-normalises the vectors", async () => {
    let seen: unknown;
    nock(BASE, { reqheaders: { authorization: `Bearer ${KEY}`, "content-type": /application\/json/ } })
      .post("/v1/embeddings", (body) => {
        seen = body;
        return true;
      })
      .reply(200, reply([[3, 4, 0, 0], [0, 0, 0, 2]]));
    const e = make();
    expect(e.name).toBe("openai:text-embedding-3-small:4");
    const out = await e.embed(["first log", "second log"]);
    expect(seen).toEqual({ model: "text-embedding-3-small", input: ["first log", "second log"], dimensions: 4 });
    expect(out).toEqual([[0.6, 0.8, 0, 0], [0, 0, 0, 1]]);
  });

  it("sends no Authorization header without a key, and no request for no input", async () => {
    nock(BASE, { badheaders: ["authorization"] }).post("/v1/embeddings").reply(200, reply([[1, 0, 0, 0]]));
    expect(await make({ apiKey: undefined }).embed(["x"])).toEqual([[1, 0, 0, 0]]);
    expect(await make().embed([])).toEqual([]);
  });

  it("batches inputs and orders results by index", async () => {
    const bodies: Array<{ input: string[] }> = [];
    const scope = nock(BASE)
      .post("/v1/embeddings", (b: { input: string[] }) => (bodies.push(b), true))
      .reply(200, reply([[0, 1, 0, 0], [1, 0, 0, 0]], [1, 0]))
      .post("/v1/embeddings", (b: { input: string[] }) => (bodies.push(b), true))
      .reply(200, reply([[0, 0, 0, 1], [0, 0, 1, 0]], [1, 0]))
      .post("/v1/embeddings", (b: { input: string[] }) => (bodies.push(b), true))
      .reply(200, reply([[5, 0, 0, 0]]));
    const out = await make({ batchSize: 2 }).embed(["a", "b", "c", "d", "e"]);
    expect(bodies.map((b) => b.input)).toEqual([["a", "b"], ["c", "d"], ["e"]]);
    expect(out).toEqual([
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
      [1, 0, 0, 0],
    ]);
    expect(scope.isDone()).toBe(true);
  });

  it("turns 401 into an auth EmbedderError without the key, even when the body echoes it", async () => {
    nock(BASE)
      .post("/v1/embeddings")
      .reply(401, { error: { message: `Incorrect API key provided: ${KEY}.`, type: "invalid_request_error", code: "invalid_api_key" } });
    const e = await failure(make().embed(["x"]));
    expect(e.reason).toBe("auth");
    expect(e.message).toContain("401");
    expect(e.message).toContain("[REDACTED]");
  });

  it("turns 500 into an http EmbedderError", async () => {
    nock(BASE).post("/v1/embeddings").reply(500, "upstream model server crashed");
    const e = await failure(make().embed(["x"]));
    expect(e.reason).toBe("http");
    expect(e.message).toContain("500");
    expect(e.message).toContain("upstream model server crashed");
  });

  it.each([
    ["a body that is not JSON", "<html>bad gateway</html>", "invalid_response"],
    ["a body without data", { object: "list" }, "invalid_response"],
    ["non-numeric vectors", { data: [{ index: 0, embedding: ["a", "b", "c", "d"] }] }, "invalid_response"],
    ["too few embeddings", reply([[1, 0, 0, 0]]), "invalid_response"],
    ["a duplicate index", reply([[1, 0, 0, 0], [0, 1, 0, 0]], [0, 0]), "invalid_response"],
    ["an index out of range", reply([[1, 0, 0, 0], [0, 1, 0, 0]], [0, 2]), "invalid_response"],
    ["vectors of another dimension", reply([[1, 0, 0], [0, 1, 0]]), "dimensions"],
  ] as const)("rejects %s", async (_label, body, reason) => {
    nock(BASE).post("/v1/embeddings").reply(200, body as never);
    const e = await failure(make().embed(["x", "y"]));
    expect(e.reason).toBe(reason);
  });

  it("times out a request that gets no answer", async () => {
    // The reply never settles; only the embedder's own AbortSignal timeout can end the request.
    nock(BASE)
      .post("/v1/embeddings")
      .reply(() => new Promise<never>(() => {}));
    const e = await failure(make({ timeoutMs: 50 }).embed(["x"]));
    expect(e.reason).toBe("timeout");
    expect(e.message).toContain("50 ms");
  });

  it("reports a network failure without the key", async () => {
    // Net connect is disabled and nothing intercepts this host: fetch fails before any response.
    const e = await failure(make({ baseUrl: "https://unreachable.test/v1" }).embed(["x"]));
    expect(e.reason).toBe("network");
  });
});

describe("EmbedderConfigSchema and createEmbedder", () => {
  const parse = (doc: unknown) => EmbedderConfigSchema.parse(doc);

  it("defaults the hashing embedder to 1024 dimensions and bounds them", () => {
    expect(parse({ kind: "hashing" })).toEqual({ kind: "hashing", dimensions: 1024 });
    expect(parse({ kind: "hashing", dimensions: 64 })).toEqual({ kind: "hashing", dimensions: 64 });
    for (const dimensions of [32, 8193, 100.5]) expect(EmbedderConfigSchema.safeParse({ kind: "hashing", dimensions }).success).toBe(false);
    expect(EmbedderConfigSchema.safeParse({ kind: "hashing", extra: 1 }).success).toBe(false);
    expect(EmbedderConfigSchema.safeParse({ kind: "bert" }).success).toBe(false);
    const e = createEmbedder(parse({ kind: "hashing", dimensions: 512 }), {});
    expect(e).toBeInstanceOf(HashingEmbedder);
    expect(e.dimensions).toBe(512);
  });

  it("validates the openai embedder and fills the timeout", () => {
    const ok = { kind: "openai", url: "https://api.openai.com/v1/", model: "text-embedding-3-small", dimensions: 1536, api_key_env: "OPENAI_API_KEY" };
    expect(parse(ok)).toEqual({ ...ok, url: "https://api.openai.com/v1", timeout_ms: 10_000 });
    for (const bad of [
      { ...ok, url: "ftp://api.openai.com/v1" },
      { ...ok, url: "https://user:pw@api.openai.com/v1" },
      { ...ok, api_key_env: "OPENAI-KEY" },
      { ...ok, dimensions: 0 },
      { ...ok, model: "" },
      { kind: "openai", url: ok.url, model: ok.model },
    ]) {
      expect(EmbedderConfigSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it("reads the API key from the secrets and refuses a missing one", async () => {
    const config: EmbedderConfig = parse({
      kind: "openai",
      url: "https://embeddings.test/v1",
      model: "m",
      dimensions: 2,
      api_key_env: "EMBED_KEY",
      timeout_ms: 1000,
    });
    const missing = (() => {
      try {
        createEmbedder(config, { OTHER: "x" });
        return null;
      } catch (err) {
        return err;
      }
    })();
    expect(missing).toBeInstanceOf(EmbedderError);
    expect((missing as EmbedderError).reason).toBe("config");
    expect((missing as EmbedderError).message).toContain("EMBED_KEY");

    nock.disableNetConnect();
    try {
      nock("https://embeddings.test", { reqheaders: { authorization: "Bearer k-123" } })
        .post("/v1/embeddings", { model: "m", input: ["x"], dimensions: 2 })
        .reply(200, { data: [{ index: 0, embedding: [0, 3] }] });
      const e = createEmbedder(config, { EMBED_KEY: "k-123" });
      expect(e.dimensions).toBe(2);
      expect(await e.embed(["x"])).toEqual([[0, 1]]);
    } finally {
      nock.cleanAll();
      nock.enableNetConnect();
    }
  });
});
