/**
 * The stand-in `pulumi` executable of the test sandbox image, run on the host with this node:
 * flags, errors and exit codes, stack state, and the preview digest / plan / update formats.
 * Each test gets its own project, $HOME and file backend in a temporary directory.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const STANDIN = fileURLToPath(new URL("../sandbox-image/rootfs/usr/local/bin/pulumi", import.meta.url));
const FIXTURES = fileURLToPath(new URL("../fixtures/pulumi/", import.meta.url));
const UNKNOWN_PROVIDER_ID = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const urn = (type: string, name: string, stack = "dev") => `urn:pulumi:${stack}::web-infra::${type}::${name}`;
const ROOT = urn("pulumi:pulumi:Stack", "web-infra-dev");
const LOGS = urn("aws:s3/bucket:Bucket", "logs");
const APP_ROLE = urn("aws:iam/role:Role", "app-role");
const ORDERS_DB = urn("aws:rds/instance:Instance", "orders-db");
const LEGACY_JOBS = urn("aws:sqs/queue:Queue", "legacy-jobs");
const DEFAULT_VPC = urn("aws:ec2/vpc:Vpc", "default-vpc");

const TOKEN_MISSING = "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions\n";
const PASSPHRASE_MISSING =
  "error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables\n";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

// Loosely typed views of the JSON the stand-in prints; each test asserts the fields it needs.
interface Step {
  op: string;
  urn: string;
  provider?: string;
  oldState?: Record<string, unknown>;
  newState?: Record<string, unknown>;
  diffReasons?: string[];
  replaceReasons?: string[];
  detailedDiff: Record<string, { kind: string; inputDiff: boolean }> | null;
}
interface Digest {
  config?: Record<string, string>;
  steps?: Step[];
  diagnostics?: Array<Record<string, unknown>>;
  duration?: number;
  changeSummary?: Record<string, number>;
}
interface ResourcePlan {
  goal?: Record<string, unknown>;
  steps: string[];
  seed?: string;
}
interface Plan {
  manifest: { time: string; magic: string; version: string };
  config?: Record<string, string>;
  resourcePlans: Record<string, ResourcePlan>;
}

/** One project directory, $HOME and file:// backend, removed after the test. */
class Workspace {
  readonly root = realpathSync(mkdtempSync(join(tmpdir(), "pulumi-standin-")));
  readonly project = join(this.root, "project");
  readonly home = join(this.root, "home");
  readonly backendDir = join(this.root, "backend");
  readonly env: Record<string, string>;

  constructor() {
    mkdirSync(this.project);
    mkdirSync(this.home);
    writeFileSync(join(this.project, "Pulumi.yaml"), "name: web-infra\nruntime: nodejs\ndescription: Web tier\n");
    // No PULUMI_* variables leak in from the machine running the tests.
    this.env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.home,
      PULUMI_BACKEND_URL: `file://${this.backendDir}`,
      PULUMI_CONFIG_PASSPHRASE: "correct horse battery staple",
    };
  }

  /** Runs the stand-in; `env` entries set to undefined are removed. */
  run(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<Run> {
    const env: Record<string, string> = { ...this.env };
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return new Promise((resolve) => {
      execFile(process.execPath, [STANDIN, ...args], { cwd: opts.cwd ?? this.project, env }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr });
      });
    });
  }

  useFixture(name: string, file = "pulumi-standin.json"): void {
    writeFileSync(join(this.project, file), readFileSync(join(FIXTURES, `${name}.json`)));
  }

  writeFixture(value: unknown, file = "pulumi-standin.json"): void {
    writeFileSync(join(this.project, file), JSON.stringify(value));
  }

  fixture(name: string): { resources: Array<Record<string, unknown>> } {
    return JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8"));
  }

  stackFile(stack: string): string {
    return join(this.backendDir, ".pulumi", "stacks", "web-infra", `${stack}.json`);
  }

  stackResources(stack: string): string[] {
    const state = JSON.parse(readFileSync(this.stackFile(stack), "utf8"));
    return state.checkpoint.latest.resources.map((r: { urn: string }) => r.urn);
  }

  async createStack(stack = "dev"): Promise<void> {
    const res = await this.run(["stack", "select", "--create", "--non-interactive", "--stack", stack]);
    expect(res, res.stderr).toMatchObject({ code: 0 });
  }

  async previewJson(args: string[] = []): Promise<{ res: Run; digest: Digest }> {
    const res = await this.run(["preview", "--non-interactive", "--json", ...args]);
    return { res, digest: JSON.parse(res.stdout) as Digest };
  }

  readPlan(file: string): Plan {
    return JSON.parse(readFileSync(join(this.project, file), "utf8")) as Plan;
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

const opsOf = (digest: Digest) => (digest.steps ?? []).map((s) => `${s.op} ${s.urn.split("::").pop()}`);
const stepOf = (digest: Digest, op: string, urnValue: string) => {
  const step = digest.steps?.find((s) => s.op === op && s.urn === urnValue);
  expect(step, `${op} ${urnValue}`).toBeDefined();
  return step!;
};

let ws: Workspace;
beforeEach(() => {
  ws = new Workspace();
});
afterEach(() => {
  ws.cleanup();
});

describe("command line", () => {
  it("prints its version anywhere, without a project or a backend login", async () => {
    const res = await ws.run(["version"], { cwd: ws.root, env: { PULUMI_BACKEND_URL: undefined } });
    expect(res).toEqual({ code: 0, stdout: "v3.270.0\n", stderr: "" });
  });

  it("rejects an unknown command with the CLI's message and exit code 255", async () => {
    const res = await ws.run(["destroy-everything"]);
    expect(res).toEqual({ code: 255, stdout: "", stderr: 'error: unknown command "destroy-everything" for "pulumi"\n' });
    expect((await ws.run(["stack", "frobnicate", "dev"])).stderr).toBe('error: unknown command "frobnicate" for "pulumi stack"\n');
    expect((await ws.run(["config", "get", "aws:region"])).stderr).toBe('error: unknown command "get" for "pulumi config"\n');
  });

  it("rejects unknown flags, flags of another command, missing values and extra arguments", async () => {
    expect(await ws.run(["preview", "--frobnicate"])).toEqual({ code: 255, stdout: "", stderr: "error: unknown flag: --frobnicate\n" });
    expect((await ws.run(["preview", "--yes"])).stderr).toBe("error: unknown flag: --yes\n");
    expect((await ws.run(["preview", "-x"])).stderr).toBe("error: unknown shorthand flag: 'x' in -x\n");
    expect((await ws.run(["preview", "--stack"])).stderr).toBe("error: flag needs an argument: --stack\n");
    expect((await ws.run(["preview", "dev"])).stderr).toBe('error: unknown command "dev" for "pulumi preview"\n');
    expect((await ws.run(["version", "--color", "purple"])).stderr).toBe(
      "error: unsupported color option: 'purple'.  Supported values are: auto, always, never, raw\n",
    );
  });

  it("accepts the global flags anywhere, in every spelling", async () => {
    const select = await ws.run(["--non-interactive", "--color=never", "-v=9", "--logtostderr", "stack", "select", "-c", "-s", "dev", "--color", "always"]);
    expect(select).toEqual({ code: 0, stdout: "Created stack 'dev'\n", stderr: "" });
    ws.useFixture("creates");
    // --cwd / -C point at the project from elsewhere; --stack=name and -s name both select.
    for (const args of [["-C", ws.project, "preview", "--stack=dev"], ["preview", "--cwd", ws.project, "-s", "dev"], ["preview", `--cwd=${ws.project}`, "-sdev"]]) {
      const res = await ws.run([...args, "--json", "--suppress-progress", "--diff", "--refresh"], { cwd: ws.root });
      expect(res.code, res.stderr).toBe(0);
      expect((JSON.parse(res.stdout) as Digest).steps?.[0]?.urn).toBe(ROOT);
    }
    expect((await ws.run(["-C", join(ws.root, "nowhere"), "preview"])).stderr).toBe(
      `error: changing the working directory: chdir ${join(ws.root, "nowhere")}: no such file or directory\n`,
    );
  });
});

describe("project", () => {
  it("fails without a Pulumi.yaml in the directory or above it", async () => {
    for (const args of [["preview"], ["stack", "select", "--create", "dev"]]) {
      const res = await ws.run(args, { cwd: ws.root });
      expect(res).toEqual({
        code: 255,
        stdout: "",
        stderr:
          `error: no Pulumi.yaml project file found (searching upwards from ${ws.root}). ` +
          "If you have not created a project yet, use `pulumi new` to do so: no project file found\n",
      });
    }
  });

  it("finds Pulumi.yaml in a parent directory, as the CLI does", async () => {
    const sub = join(ws.project, "infra", "modules");
    mkdirSync(sub, { recursive: true });
    const res = await ws.run(["stack", "select", "--create", "dev"], { cwd: sub });
    expect(res.code, res.stderr).toBe(0);
    expect(existsSync(ws.stackFile("dev"))).toBe(true);
  });
});

describe("backends", () => {
  it("Pulumi Cloud (no PULUMI_BACKEND_URL) needs PULUMI_ACCESS_TOKEN for every stack command", async () => {
    const cloud = { PULUMI_BACKEND_URL: undefined, PULUMI_CONFIG_PASSPHRASE: undefined };
    for (const args of [["stack", "select", "--create", "dev"], ["preview", "--stack", "dev"], ["up", "--yes", "--stack", "dev"]]) {
      expect(await ws.run(args, { env: cloud })).toEqual({ code: 255, stdout: "", stderr: TOKEN_MISSING });
    }
    // https://api.pulumi.com spelled out is the same backend.
    expect((await ws.run(["stack", "init", "dev"], { env: { ...cloud, PULUMI_BACKEND_URL: "https://api.pulumi.com/" } })).stderr).toBe(TOKEN_MISSING);
  });

  it("Pulumi Cloud with a token keeps its emulated state under $HOME and needs no passphrase", async () => {
    const cloud = { PULUMI_BACKEND_URL: undefined, PULUMI_CONFIG_PASSPHRASE: undefined, PULUMI_ACCESS_TOKEN: "pul-0123456789abcdef" };
    const select = await ws.run(["stack", "select", "--create", "acme/web-infra/dev"], { env: cloud });
    expect(select).toEqual({ code: 0, stdout: "Created stack 'dev'\n", stderr: "" });
    expect(existsSync(join(ws.home, ".pulumi-standin", "cloud", "web-infra", "dev.json"))).toBe(true);
    const preview = await ws.run(["preview", "--json"], { env: cloud });
    expect(preview.code, preview.stderr).toBe(0);
    expect((JSON.parse(preview.stdout) as Digest).changeSummary).toEqual({ create: 1 });
  });

  it("a file:// backend needs the passphrase to create a stack and to preview, not to select one", async () => {
    const noPassphrase = { PULUMI_CONFIG_PASSPHRASE: undefined };
    expect(await ws.run(["stack", "select", "--create", "dev"], { env: noPassphrase })).toEqual({ code: 255, stdout: "", stderr: PASSPHRASE_MISSING });
    expect((await ws.run(["stack", "init", "dev"], { env: noPassphrase })).stderr).toBe(PASSPHRASE_MISSING);
    expect(existsSync(ws.stackFile("dev"))).toBe(false);

    await ws.createStack("dev");
    expect(await ws.run(["stack", "select", "dev"], { env: noPassphrase })).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await ws.run(["preview", "--json"], { env: noPassphrase })).toEqual({ code: 255, stdout: "", stderr: PASSPHRASE_MISSING });
    expect((await ws.run(["up", "--yes"], { env: noPassphrase })).stderr).toBe(PASSPHRASE_MISSING);
  });

  it("accepts PULUMI_CONFIG_PASSPHRASE_FILE, or an empty but set PULUMI_CONFIG_PASSPHRASE", async () => {
    const file = join(ws.root, "passphrase");
    writeFileSync(file, "from a file\n");
    expect((await ws.run(["stack", "init", "dev"], { env: { PULUMI_CONFIG_PASSPHRASE: undefined, PULUMI_CONFIG_PASSPHRASE_FILE: file } })).code).toBe(0);
    expect((await ws.run(["stack", "init", "prod"], { env: { PULUMI_CONFIG_PASSPHRASE: "" } })).code).toBe(0);
    const unreadable = await ws.run(["stack", "init", "qa"], { env: { PULUMI_CONFIG_PASSPHRASE: undefined, PULUMI_CONFIG_PASSPHRASE_FILE: join(ws.root, "nope") } });
    expect(unreadable.code).toBe(255);
    expect(unreadable.stderr).toMatch(/^error: getting secrets manager: unable to read PULUMI_CONFIG_PASSPHRASE_FILE: /);
  });

  it("emulates an s3:// backend under /tmp/pulumi-standin-backends and names it in lock errors", async () => {
    const bucket = `standin-test-${process.pid}-${Date.now()}`;
    const s3 = { PULUMI_BACKEND_URL: `s3://${bucket}/state?region=eu-west-1` };
    try {
      await ws.run(["stack", "select", "--create", "dev"], { env: s3 });
      expect(existsSync(`/tmp/pulumi-standin-backends/s3/${bucket}/state/.pulumi/stacks/web-infra/dev.json`)).toBe(true);
      ws.useFixture("locked");
      const res = await ws.run(["preview"], { env: s3 });
      expect(res.stderr).toContain(`  s3://${bucket}/state?region=eu-west-1/.pulumi/locks/organization/web-infra/dev/`);
    } finally {
      rmSync(`/tmp/pulumi-standin-backends/s3/${bucket}`, { recursive: true, force: true });
    }
  });
});

describe("stack select / stack init", () => {
  it("selecting a missing stack fails without --create", async () => {
    expect(await ws.run(["stack", "select", "dev"])).toEqual({ code: 255, stdout: "", stderr: "error: no stack named 'dev' found\n" });
    expect(existsSync(ws.stackFile("dev"))).toBe(false);
  });

  it("--create creates the stack's state and selects it; selecting it again is silent", async () => {
    expect(await ws.run(["stack", "select", "--create", "--stack", "dev"])).toEqual({ code: 0, stdout: "Created stack 'dev'\n", stderr: "" });
    const state = JSON.parse(readFileSync(ws.stackFile("dev"), "utf8"));
    expect(state.version).toBe(3);
    expect(state.checkpoint.stack).toBe("organization/web-infra/dev");
    expect(state.checkpoint.latest.resources).toEqual([]);
    expect(state.checkpoint.latest.secrets_providers.type).toBe("passphrase");

    // The selection lives where the CLI keeps it: one workspace file per project file.
    const workspaces = readdirSync(join(ws.home, ".pulumi", "workspaces"));
    expect(workspaces).toHaveLength(1);
    expect(workspaces[0]).toMatch(/^web-infra-[0-9a-f]{40}-workspace\.json$/);
    expect(JSON.parse(readFileSync(join(ws.home, ".pulumi", "workspaces", workspaces[0]!), "utf8"))).toEqual({ stack: "dev" });

    expect(await ws.run(["stack", "select", "--create", "dev"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await ws.run(["stack", "select", "dev"])).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("stack init creates and selects a stack, and refuses an existing one", async () => {
    expect(await ws.run(["stack", "init", "prod"])).toEqual({ code: 0, stdout: "Created stack 'prod'\n", stderr: "" });
    expect(await ws.run(["stack", "init", "prod"])).toEqual({ code: 255, stdout: "", stderr: "error: stack 'prod' already exists\n" });
    const { digest } = await ws.previewJson();
    expect(digest.steps?.[0]?.urn).toBe(urn("pulumi:pulumi:Stack", "web-infra-prod", "prod"));
  });

  it("refuses two different stack names and names the CLI does not allow", async () => {
    expect((await ws.run(["stack", "select", "dev", "--stack", "prod"])).stderr).toBe(
      "error: only one of --stack or argument stack name may be specified, not both\n",
    );
    expect((await ws.run(["stack", "select", "--create", "dev!"])).stderr).toBe(
      "error: a stack name may only contain alphanumeric, hyphens, underscores, or periods\n",
    );
  });
});

describe("preview: choosing the stack and the program", () => {
  it("fails when no stack is selected or the named one does not exist", async () => {
    expect(await ws.run(["preview"])).toEqual({
      code: 255,
      stdout: "",
      stderr: "error: no stack selected; please use `pulumi stack select` or `pulumi stack init` to choose one\n",
    });
    expect(await ws.run(["preview", "--stack", "qa"])).toEqual({ code: 255, stdout: "", stderr: "error: no stack named 'qa' found\n" });
  });

  it("an empty program (no fixture) previews the root stack only", async () => {
    await ws.createStack();
    const { res, digest } = await ws.previewJson();
    expect(res.code).toBe(0);
    expect(opsOf(digest)).toEqual(["create web-infra-dev"]);
    expect(digest.changeSummary).toEqual({ create: 1 });
    expect(digest).not.toHaveProperty("config");
    expect(digest).not.toHaveProperty("diagnostics");
  });

  it("prefers pulumi-standin.<stack>.json over pulumi-standin.json", async () => {
    await ws.createStack("dev");
    await ws.createStack("prod");
    ws.useFixture("creates");
    ws.useFixture("no-changes", "pulumi-standin.prod.json");
    expect((await ws.previewJson(["--stack", "dev"])).digest.changeSummary).toEqual({ create: 4 });
    expect((await ws.previewJson(["--stack", "prod"])).digest.changeSummary).toEqual({ create: 1, same: 2 });
  });

  it("reports a broken fixture as a stand-in error", async () => {
    await ws.createStack();
    ws.writeFixture({ resources: [{ type: "aws:s3/bucket:Bucket", name: "logs", op: "modify" }] });
    const res = await ws.run(["preview"]);
    expect(res.code).toBe(255);
    expect(res.stderr).toBe(
      `error: pulumi stand-in: fixture ${join(ws.project, "pulumi-standin.json")}: resources[0].op must be one of create, update, replace, delete, same, read\n`,
    );
  });
});

describe("preview --json (PreviewDigest)", () => {
  beforeEach(async () => {
    await ws.createStack();
    ws.useFixture("mixed");
  });

  it("prints one JSON object, indented with four spaces, in the engine's step order", async () => {
    const { res, digest } = await ws.previewJson();
    expect(res.code).toBe(0);
    expect(res.stderr).toBe("");
    expect(res.stdout.startsWith('{\n    "config": {\n        "aws:region": "eu-west-1",')).toBe(true);
    expect(res.stdout.endsWith("}\n")).toBe(true);
    // Unchanged resources and a replacement's create/delete halves are hidden by default;
    // deletions come last, last-registered first.
    expect(opsOf(digest)).toEqual([
      "create web-infra-dev",
      "update logs",
      "replace orders-db",
      "create assets",
      "create cdn",
      "read default-vpc",
      "create www",
      "delete legacy-worker",
      "delete legacy-jobs",
    ]);
    // One count per resource: the never-updated root stack is a create, the replace counts once.
    expect(digest.changeSummary).toEqual({ create: 4, delete: 2, read: 1, replace: 1, same: 1, update: 1 });
    expect(digest.config).toEqual({ "aws:region": "eu-west-1", "web-infra:domain": "example.com" });
    expect(Number.isInteger(digest.duration)).toBe(true);
    expect(digest.duration).toBeGreaterThan(0);
  });

  it("describes each step with the states, reasons and detailed diff its op has", async () => {
    const { digest } = await ws.previewJson();
    expect(digest.steps?.[0]).toEqual({ op: "create", urn: ROOT, newState: { urn: ROOT, custom: false, type: "pulumi:pulumi:Stack" }, detailedDiff: null });

    const provider = `urn:pulumi:dev::web-infra::pulumi:providers:aws::default_6_0_0::${UNKNOWN_PROVIDER_ID}`;
    const update = stepOf(digest, "update", LOGS);
    expect(update.provider).toBe(provider);
    expect(update.diffReasons).toEqual(["acl", "tags"]);
    expect(update).not.toHaveProperty("replaceReasons");
    expect(update.detailedDiff).toEqual({ acl: { kind: "update", inputDiff: false }, tags: { kind: "add", inputDiff: false } });
    expect(update.oldState).toMatchObject({ urn: LOGS, custom: true, type: "aws:s3/bucket:Bucket", inputs: { acl: "private", forceDestroy: false }, parent: ROOT, provider });
    expect(update.oldState?.id).toEqual(expect.any(String));
    expect(update.newState).toMatchObject({ inputs: { acl: "log-delivery-write", forceDestroy: false, tags: { team: "platform" } }, parent: ROOT });

    const replace = stepOf(digest, "replace", ORDERS_DB);
    expect(replace.replaceReasons).toEqual(["storageEncrypted"]);
    expect(replace.diffReasons).toEqual(["instanceClass", "storageEncrypted"]);
    expect(replace.detailedDiff).toEqual({
      instanceClass: { kind: "update", inputDiff: false },
      storageEncrypted: { kind: "update-replace", inputDiff: false },
    });
    expect(replace.oldState).toBeDefined();
    expect(replace.newState).toBeDefined();

    const create = stepOf(digest, "create", urn("aws:s3/bucket:Bucket", "assets"));
    expect(create).not.toHaveProperty("oldState");
    expect(create.newState).not.toHaveProperty("id");
    expect(create.detailedDiff).toBeNull();

    const del = stepOf(digest, "delete", LEGACY_JOBS);
    expect(del.oldState?.inputs).toEqual({ name: "legacy-jobs", visibilityTimeoutSeconds: 30 });
    expect(del).not.toHaveProperty("newState");
    expect(del.detailedDiff).toBeNull();

    const read = stepOf(digest, "read", DEFAULT_VPC);
    expect(read.newState).toMatchObject({ id: "vpc-0a1b2c3d4e5f60718", external: true });
  });

  it("lists the diagnostics with severity, the prefix inside the message (as ShowPreviewDigest does) and the URN", async () => {
    const { digest } = await ws.previewJson();
    expect(digest.diagnostics).toEqual([
      { urn: ORDERS_DB, message: "warning: skipFinalSnapshot is true: the replaced instance is deleted without a final snapshot\n", severity: "warning" },
      { message: "warning: using pulumi-aws 6.0.0 from the plugin cache; 6.83.0 is available\n", severity: "warning" },
    ]);
  });

  it("--show-replacement-steps --show-sames list a replacement's three steps and unchanged resources", async () => {
    const { digest } = await ws.previewJson(["--show-replacement-steps", "--show-sames"]);
    expect(opsOf(digest)).toEqual([
      "create web-infra-dev",
      "update logs",
      "same app-role",
      "create-replacement orders-db",
      "replace orders-db",
      "create assets",
      "create cdn",
      "read default-vpc",
      "create www",
      "delete legacy-worker",
      "delete legacy-jobs",
      "delete-replaced orders-db",
    ]);
    expect(digest.changeSummary).toEqual({ create: 4, delete: 2, read: 1, replace: 1, same: 1, update: 1 });
    const createReplacement = stepOf(digest, "create-replacement", ORDERS_DB);
    expect(createReplacement.replaceReasons).toEqual(["storageEncrypted"]);
    expect(createReplacement.detailedDiff?.storageEncrypted).toEqual({ kind: "update-replace", inputDiff: false });
    const deleteReplaced = stepOf(digest, "delete-replaced", ORDERS_DB);
    expect(deleteReplaced.oldState).toBeDefined();
    expect(deleteReplaced).not.toHaveProperty("newState");
    expect(deleteReplaced.detailedDiff).toBeNull();
    const same = stepOf(digest, "same", APP_ROLE);
    expect(same.oldState?.inputs).toEqual(same.newState?.inputs);
    expect(same.detailedDiff).toBeNull();
  });
});

describe("preview --save-plan", () => {
  beforeEach(async () => {
    await ws.createStack();
    ws.useFixture("mixed");
  });

  it("writes a plan covering every resource; only the manifest time and the seeds change between runs", async () => {
    const first = await ws.run(["preview", "--json", "--save-plan", "plan-1.json"]);
    const second = await ws.run(["preview", "--json", "--save-plan", join(ws.project, "plan-2.json")]);
    expect([first.code, second.code]).toEqual([0, 0]);
    const [a, b] = [ws.readPlan("plan-1.json"), ws.readPlan("plan-2.json")];

    const everyResource = [ROOT, ...ws.fixture("mixed").resources.map((r) => urn(r.type as string, r.name as string))];
    expect(Object.keys(a.resourcePlans).sort()).toEqual(everyResource.sort());
    const stepsOf = (u: string) => a.resourcePlans[u]!.steps;
    expect(stepsOf(ROOT)).toEqual(["create"]);
    expect(stepsOf(LOGS)).toEqual(["update"]);
    expect(stepsOf(APP_ROLE)).toEqual(["same"]);
    expect(stepsOf(ORDERS_DB)).toEqual(["create-replacement", "replace", "delete-replaced"]);
    expect(stepsOf(DEFAULT_VPC)).toEqual(["read"]);
    expect(stepsOf(LEGACY_JOBS)).toEqual(["delete"]);
    expect(a.resourcePlans[LEGACY_JOBS]).not.toHaveProperty("goal");
    expect(a.resourcePlans[LOGS]!.goal).toMatchObject({
      type: "aws:s3/bucket:Bucket",
      name: "logs",
      custom: true,
      parent: ROOT,
      inputDiff: { adds: { tags: { team: "platform" } }, updates: { acl: "log-delivery-write" } },
    });
    expect(a.config).toEqual({ "aws:region": "eu-west-1", "web-infra:domain": "example.com" });
    expect(a.manifest.version).toBe("v3.270.0");
    expect(a.manifest.magic).toBe(createHash("sha256").update("v3.270.0").digest("hex"));

    const withoutVolatile = (plan: Plan) => ({
      ...plan,
      manifest: { ...plan.manifest, time: "" },
      resourcePlans: Object.fromEntries(Object.entries(plan.resourcePlans).map(([u, rp]) => [u, { ...rp, seed: rp.seed === undefined ? "none" : "seeded" }])),
    });
    expect(withoutVolatile(b)).toEqual(withoutVolatile(a));
    expect(b.manifest.time).not.toBe(a.manifest.time);
    for (const [u, rp] of Object.entries(a.resourcePlans)) {
      if (rp.seed === undefined) continue;
      expect(Buffer.from(rp.seed, "base64")).toHaveLength(32);
      expect(b.resourcePlans[u]!.seed, u).not.toBe(rp.seed);
    }
  });

  it("without --json says where the plan went; a plan path in a missing directory fails", async () => {
    const res = await ws.run(["preview", "--save-plan", "plan.json"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("Update plan written to 'plan.json'\nRun `pulumi up --plan='plan.json'` to constrain the update");
    expect(existsSync(join(ws.project, "plan.json"))).toBe(true);
    expect(await ws.run(["preview", "--json", "--save-plan", "out/plan.json"]).then((r) => [r.code, r.stderr])).toEqual([
      255,
      "error: open out/plan.json: no such file or directory\n",
    ]);
  });
});

describe("preview --expect-no-changes", () => {
  beforeEach(async () => {
    await ws.createStack();
  });

  it("passes when only unchanged resources remain after an update", async () => {
    ws.useFixture("no-changes");
    expect((await ws.run(["up", "--yes"])).code).toBe(0);
    const { res, digest } = await ws.previewJson(["--expect-no-changes"]);
    expect(res).toMatchObject({ code: 0, stderr: "" });
    expect(opsOf(digest)).toEqual(["same web-infra-dev"]);
    expect(digest.changeSummary).toEqual({ same: 3 });
  });

  it("fails after printing the preview when changes are proposed, the root stack's first create included", async () => {
    ws.useFixture("mixed");
    const mixed = await ws.run(["preview", "--json", "--expect-no-changes", "--save-plan", "plan.json"]);
    expect(mixed.code).toBe(255);
    expect(mixed.stderr).toBe("error: no changes were expected but changes were proposed\n");
    expect((JSON.parse(mixed.stdout) as Digest).changeSummary?.replace).toBe(1);
    expect(existsSync(join(ws.project, "plan.json"))).toBe(false);

    // engine.HasChanges counts the stack's own creation as a change.
    ws.useFixture("no-changes");
    const fresh = await ws.previewJson(["--expect-no-changes"]);
    expect(fresh.res.code).toBe(255);
    expect(fresh.digest.changeSummary).toEqual({ create: 1, same: 2 });
  });
});

describe("fail modes", () => {
  beforeEach(async () => {
    await ws.createStack();
  });

  it("locked (file backend): the lock file is named, nothing is printed on stdout", async () => {
    ws.useFixture("locked");
    const expected = {
      code: 255,
      stdout: "",
      stderr:
        "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.\n" +
        `  file://${ws.backendDir}/.pulumi/locks/organization/web-infra/dev/8f1c3f0e-2d5e-4a54-9c6e-0d7b0f1a7e21.json: created by runner@ci-host (pid 4242) at 2026-11-20T10:00:00Z\n`,
    };
    expect(await ws.run(["preview", "--json"])).toEqual(expected);
    expect(await ws.run(["up", "--yes"])).toEqual(expected);
    expect(ws.stackResources("dev")).toEqual([]);
  });

  it("locked (Pulumi Cloud): 409 Conflict", async () => {
    const cloud = { PULUMI_BACKEND_URL: undefined, PULUMI_CONFIG_PASSPHRASE: undefined, PULUMI_ACCESS_TOKEN: "pul-0123456789abcdef" };
    await ws.run(["stack", "select", "--create", "dev"], { env: cloud });
    ws.useFixture("locked");
    expect(await ws.run(["preview", "--json"], { env: cloud })).toEqual({
      code: 255,
      stdout: "",
      stderr: "error: [409] Conflict: Another update is currently in progress.\n",
    });
  });

  it("pending-operations: the CLI's full message, naming the first resource", async () => {
    ws.useFixture("pending-operations");
    const expected = [
      "error: the current deployment has 1 resource(s) with pending operations:",
      `  * ${ORDERS_DB}, interrupted while creating`,
      "",
      "These resources are in an unknown state because the Pulumi CLI was interrupted while",
      "waiting for changes to these resources to complete. You should confirm whether or not the",
      "operations listed completed successfully by checking the state of the appropriate provider.",
      "For example, if you are using AWS, you can confirm using the AWS Console.",
      "",
      "Once you have confirmed the status of the interrupted operations, you can repair your stack",
      "using `pulumi refresh` which will refresh the state from the provider you are using and",
      "clear the pending operations if there are any.",
      "",
      "Note that `pulumi refresh` will need to be run interactively to clear pending CREATE operations.",
      "",
    ].join("\n");
    expect(await ws.run(["preview", "--json"])).toEqual({ code: 255, stdout: "", stderr: expected });
    expect((await ws.run(["up", "--skip-preview"])).stderr).toBe(expected);
  });

  it("program-error with --json: the root step and two error diagnostics, then `preview failed`", async () => {
    ws.useFixture("program-error");
    const res = await ws.run(["preview", "--json", "--save-plan", "plan.json"]);
    expect(res.code).toBe(255);
    expect(res.stderr).toBe("error: preview failed\n");
    // Go's encoder escapes < and > in strings.
    expect(res.stdout).toContain("Object.\\u003canonymous\\u003e");
    const digest = JSON.parse(res.stdout) as Digest;
    expect(opsOf(digest)).toEqual(["create web-infra-dev"]);
    expect(digest.changeSummary).toEqual({ create: 1 });
    const trace = `TypeError: Cannot read properties of undefined (reading 'id')\n    at Object.<anonymous> (${ws.project}/index.ts:12:34)\n`;
    expect(digest.diagnostics).toEqual([
      { urn: ROOT, message: `error: ${trace}`, severity: "error" },
      { urn: ROOT, message: `error: Running program '${ws.project}' failed with an unhandled exception:\n${trace}`, severity: "error" },
    ]);
    expect(existsSync(join(ws.project, "plan.json"))).toBe(false);
  });

  it("program-error without --json: the diagnostics, and no resource summary", async () => {
    ws.useFixture("program-error");
    const res = await ws.run(["preview"]);
    expect(res.code).toBe(255);
    expect(res.stderr).toBe("error: preview failed\n");
    expect(res.stdout).toContain("Diagnostics:\n  pulumi:pulumi:Stack (web-infra-dev):\n    error: TypeError: Cannot read properties of undefined (reading 'id')\n");
    expect(res.stdout).toContain(`    error: Running program '${ws.project}' failed with an unhandled exception:\n`);
    expect(res.stdout).not.toContain("Resources:");
    const up = await ws.run(["up", "--yes"]);
    expect([up.code, up.stderr]).toEqual([255, "error: update failed\n"]);
    expect(ws.stackResources("dev")).toEqual([]);
  });
});

describe("preview without --json", () => {
  it("shows the progress rows, the diagnostics and the Resources summary", async () => {
    await ws.createStack();
    ws.useFixture("mixed");
    const res = await ws.run(["preview"]);
    expect(res).toMatchObject({ code: 0, stderr: "" });
    const lines = res.stdout.split("\n");
    expect(lines[0]).toBe("Previewing update (dev):");
    expect(lines).toEqual(
      expect.arrayContaining([
        " +  pulumi:pulumi:Stack web-infra-dev create",
        " ~  aws:s3:Bucket logs update [diff: +tags~acl]",
        " +- aws:rds:Instance orders-db replace [diff: ~instanceClass,storageEncrypted]",
        " +  aws:cloudfront:Distribution cdn create",
        " -  aws:sqs:Queue legacy-jobs delete",
      ]),
    );
    // Unchanged resources and reads are not rows of the progress display.
    expect(res.stdout).not.toContain("app-role");
    expect(res.stdout).not.toContain("default-vpc");
    expect(res.stdout).toContain(
      "Diagnostics:\n  aws:rds:Instance (orders-db):\n    warning: skipFinalSnapshot is true: the replaced instance is deleted without a final snapshot\n\n" +
        "  pulumi:pulumi:Stack (web-infra-dev):\n    warning: using pulumi-aws 6.0.0 from the plugin cache; 6.83.0 is available\n",
    );
    expect(res.stdout).toContain("Resources:\n    + 4 to create\n    ~ 1 to update\n    - 2 to delete\n    +-1 to replace\n    8 changes. 1 unchanged\n");
  });

  it("--diff shows each step with its URN and changed properties", async () => {
    await ws.createStack();
    ws.useFixture("mixed");
    const res = await ws.run(["preview", "--diff"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`+ pulumi:pulumi:Stack: (create)\n    [urn=${ROOT}]\n`);
    expect(res.stdout).toContain('      ~ acl: "private" => "log-delivery-write"\n      + tags: {"team":"platform"}\n');
    expect(res.stdout).toContain("    +-aws:rds/instance:Instance: (replace)\n");
  });
});

describe("up", () => {
  beforeEach(async () => {
    await ws.createStack();
  });

  it("refuses to run non-interactively without --yes or --skip-preview", async () => {
    ws.useFixture("creates");
    expect(await ws.run(["up"])).toEqual({
      code: 255,
      stdout: "",
      stderr: "error: --yes or --skip-preview must be passed in to proceed when running in non-interactive mode\n",
    });
    expect(ws.stackResources("dev")).toEqual([]);
    expect((await ws.run(["up"], { env: { PULUMI_SKIP_CONFIRMATIONS: "true" } })).code).toBe(0);
  });

  it("with a matching --plan updates the stack, and the next preview sees the root stack unchanged", async () => {
    ws.useFixture("creates");
    expect((await ws.run(["preview", "--json", "--save-plan", "plan.json"])).code).toBe(0);
    const up = await ws.run(["up", "--plan", "plan.json", "--yes"]);
    expect(up).toMatchObject({ code: 0, stderr: "" });
    expect(up.stdout.startsWith("Updating (dev):\n")).toBe(true);
    expect(up.stdout).toContain(" +  aws:s3:Bucket logs created\n");
    expect(up.stdout).toContain("Resources:\n    + 4 created\n\nDuration: 1s\n");

    const provider = "urn:pulumi:dev::web-infra::pulumi:providers:aws::default_6_0_0";
    expect(ws.stackResources("dev")).toEqual([ROOT, provider, LOGS, APP_ROLE, urn("aws:s3/bucketPolicy:BucketPolicy", "logs-policy")]);

    const { digest } = await ws.previewJson();
    expect(digest.steps?.[0]?.op).toBe("same");
    expect(digest.changeSummary).toEqual({ create: 3, same: 1 });
    // The provider now has the ID the update gave it, not the preview's unknown placeholder.
    const providers = new Set(digest.steps?.slice(1).map((s) => s.provider));
    expect(providers.size).toBe(1);
    expect([...providers][0]).toMatch(new RegExp(`^${provider}::[0-9a-f-]{36}$`));
    expect([...providers][0]).not.toContain(UNKNOWN_PROVIDER_ID);
  });

  it("with a plan from another program fails on the first departure, in the engine's words", async () => {
    ws.useFixture("creates");
    await ws.run(["preview", "--save-plan", "plan.json"]);
    ws.useFixture("mixed");
    expect(await ws.run(["up", "--yes", "--plan=plan.json"])).toEqual({
      code: 255,
      stdout: "",
      stderr: `error: resource ${LOGS} violates plan: properties changed: +tags, ~acl\n`,
    });
    expect(ws.stackResources("dev")).toEqual([]);

    // A resource the plan does not know, and a planned one that went missing.
    const creates = ws.fixture("creates");
    ws.writeFixture({ ...creates, resources: [...creates.resources, { type: "aws:sns/topic:Topic", name: "alerts", op: "create" }] });
    expect((await ws.run(["up", "-y", "--plan", "plan.json"])).stderr).toBe(
      "error: create is not allowed by the plan: no steps were expected for this resource\n",
    );
    ws.writeFixture({ ...creates, resources: creates.resources.slice(0, 2) });
    expect((await ws.run(["up", "-y", "--plan", "plan.json"])).stderr).toBe(
      `error: expected resource operations for ${urn("aws:s3/bucketPolicy:BucketPolicy", "logs-policy")} but none were seen\n`,
    );
  });

  it("fails when the plan cannot be read", async () => {
    ws.useFixture("creates");
    expect(await ws.run(["up", "--yes", "--plan", "missing.json"])).toEqual({
      code: 255,
      stdout: "",
      stderr: "error: could not read plan: open missing.json: no such file or directory\n",
    });
  });

  it("--json streams engine events, one JSON object per line", async () => {
    ws.useFixture("mixed");
    const res = await ws.run(["up", "--yes", "--json"]);
    expect(res).toMatchObject({ code: 0, stderr: "" });
    const events = res.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, any>);
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i));
    expect(events[0]!.preludeEvent).toEqual({ config: { "aws:region": "eu-west-1", "web-infra:domain": "example.com" } });
    expect(events.at(-1)).toHaveProperty("cancelEvent");
    const summary = events.find((e) => e.summaryEvent)!.summaryEvent;
    expect(summary).toMatchObject({ resourceChanges: { create: 4, delete: 2, read: 1, replace: 1, same: 1, update: 1 }, isPreview: false });
    const pre = events.filter((e) => e.resourcePreEvent).map((e) => e.resourcePreEvent.metadata);
    expect(pre.filter((m) => m.urn === ORDERS_DB).map((m) => m.op)).toEqual(["create-replacement", "replace", "delete-replaced"]);
    expect(pre.find((m) => m.op === "replace").detailedDiff.storageEncrypted).toEqual({ diffKind: "update-replace", inputDiff: false });
    const warning = events.find((e) => e.diagnosticEvent?.urn === ORDERS_DB)!.diagnosticEvent;
    expect(warning).toMatchObject({ prefix: "warning: ", severity: "warning" });
    expect(ws.stackResources("dev")).not.toContain(LEGACY_JOBS);
    expect(ws.stackResources("dev")).toContain(ORDERS_DB);
  });
});

describe("cancel", () => {
  it("needs --yes, then succeeds for an existing stack", async () => {
    await ws.createStack();
    expect(await ws.run(["cancel"])).toEqual({ code: 255, stdout: "", stderr: "error: --yes must be passed in to proceed when running in non-interactive mode\n" });
    expect(await ws.run(["cancel", "--yes"])).toEqual({ code: 0, stdout: "The currently running update for 'dev' has been canceled!\n", stderr: "" });
    expect((await ws.run(["cancel", "--yes", "qa"])).stderr).toBe("error: no stack named 'qa' found\n");
  });
});

const STACK_CONFIG = "config:\n  aws:region: eu-west-1\n  web-infra:domain: example.com\n";
const NO_YES = "error: --yes or --skip-preview or --preview-only must be passed in to proceed when running in non-interactive mode\n";
const configFile = (stack: string) => join(ws.project, `Pulumi.${stack}.yaml`);

describe("stack init --copy-config-from", () => {
  it("creates and selects the stack with a verbatim copy of the source's config file", async () => {
    await ws.createStack("dev");
    writeFileSync(configFile("dev"), STACK_CONFIG);
    expect(await ws.run(["stack", "init", "--non-interactive", "--stack", "review-7", "--copy-config-from", "dev"])).toEqual({
      code: 0,
      stdout: "Created stack 'review-7'\n",
      stderr: "",
    });
    expect(readFileSync(configFile("review-7"), "utf8")).toBe(STACK_CONFIG);
    expect((await ws.previewJson()).digest.steps?.[0]?.urn).toBe(urn("pulumi:pulumi:Stack", "web-infra-review-7", "review-7"));

    // A source without a config file has no config: nothing to copy, and no error.
    expect((await ws.run(["stack", "init", "qa", "--copy-config-from=review-7"])).code).toBe(0);
    rmSync(configFile("review-7"));
    expect(await ws.run(["stack", "init", "qa-2", "--copy-config-from", "review-7"])).toMatchObject({ code: 0, stderr: "" });
    expect(existsSync(configFile("qa-2"))).toBe(false);
  });

  it("a missing source fails after the new stack is created, as in the CLI", async () => {
    expect(await ws.run(["stack", "init", "review-7", "--copy-config-from", "template"])).toEqual({
      code: 255,
      stdout: "Created stack 'review-7'\n",
      stderr: "error: no stack named 'template' found\n",
    });
    expect(existsSync(ws.stackFile("review-7"))).toBe(true);
    expect(existsSync(configFile("review-7"))).toBe(false);
  });
});

describe("config cp", () => {
  beforeEach(async () => {
    await ws.createStack("review-7");
    await ws.createStack("dev");
    writeFileSync(configFile("dev"), STACK_CONFIG);
  });

  it("copies the source stack's whole config file to --dest and selects the source, silently", async () => {
    writeFileSync(configFile("review-7"), "config:\n  aws:region: us-east-1\n");
    await ws.run(["stack", "select", "review-7"]);
    expect(await ws.run(["config", "cp", "--non-interactive", "--stack", "dev", "--dest", "review-7"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(configFile("review-7"), "utf8")).toBe(STACK_CONFIG);
    // RequireStack(SetCurrent): `--stack dev` is now the selected stack.
    expect((await ws.previewJson()).digest.steps?.[0]?.urn).toBe(ROOT);

    // -d is --dest here (--debug elsewhere); the source defaults to the selected stack.
    await ws.createStack("qa");
    await ws.run(["stack", "select", "dev"]);
    expect(await ws.run(["config", "cp", "-d", "qa"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(configFile("qa"), "utf8")).toBe(STACK_CONFIG);
  });

  it("a source without a config file has nothing to copy: the destination's file is left as it is", async () => {
    rmSync(configFile("dev"));
    writeFileSync(configFile("review-7"), "config:\n  aws:region: us-east-1\n");
    expect(await ws.run(["config", "cp", "-s", "dev", "-d", "review-7"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(configFile("review-7"), "utf8")).toBe("config:\n  aws:region: us-east-1\n");
  });

  it("fails for a missing stack, the same stack, or a single key", async () => {
    expect(await ws.run(["config", "cp", "--stack", "template", "--dest", "review-7"])).toEqual({ code: 255, stdout: "", stderr: "error: no stack named 'template' found\n" });
    expect((await ws.run(["config", "cp", "--stack", "dev", "--dest", "prod"])).stderr).toBe("error: no stack named 'prod' found\n");
    expect((await ws.run(["config", "cp", "--stack", "dev", "--dest", "dev"])).stderr).toBe("error: current stack and destination stack are the same\n");
    expect((await ws.run(["config", "cp", "aws:region", "--stack", "dev", "--dest", "review-7"])).stderr).toBe(
      "error: `pulumi config cp <key>` (copying a single key) is not emulated by this stand-in\n",
    );
    expect(existsSync(configFile("review-7"))).toBe(false);
  });
});

describe("stack outputs", () => {
  const withOutputs = () => {
    const creates = ws.fixture("creates");
    ws.writeFixture({ ...creates, outputs: { url: "https://logs.example.com/?a=1&b=<2>", replicas: 2, tags: { team: "web" }, dbPassword: { secret: "hunter2" } } });
  };

  it("a stack never updated has none", async () => {
    await ws.createStack();
    withOutputs();
    expect(await ws.run(["stack", "output"])).toEqual({ code: 0, stdout: "Current stack outputs (0):\n    No output values currently in this stack\n", stderr: "" });
    expect(await ws.run(["stack", "output", "--json", "--stack", "dev"])).toEqual({ code: 0, stdout: "{}\n", stderr: "" });
  });

  it("up records them on the root stack, the secret sealed in the checkpoint", async () => {
    await ws.createStack();
    withOutputs();
    expect((await ws.run(["up", "--yes"])).code).toBe(0);
    const text = readFileSync(ws.stackFile("dev"), "utf8");
    expect(text).not.toContain("hunter2");
    const root = JSON.parse(text).checkpoint.latest.resources[0];
    expect(root.urn).toBe(ROOT);
    expect(root.outputs).toMatchObject({ replicas: 2, tags: { team: "web" }, url: "https://logs.example.com/?a=1&b=<2>" });
    expect(root.outputs.dbPassword).toEqual({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: expect.stringMatching(/^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/) });
  });

  it("stack output prints the CLI's table, --json (two-space indent, no HTML escaping), one property", async () => {
    await ws.createStack();
    withOutputs();
    await ws.run(["up", "--yes"]);
    expect(await ws.run(["stack", "output"])).toEqual({
      code: 0,
      stdout:
        "Current stack outputs (4):\n" +
        "    OUTPUT      VALUE\n" +
        "    dbPassword  [secret]\n" +
        "    replicas    2\n" +
        '    tags        {"team":"web"}\n' +
        "    url         https://logs.example.com/?a=1&b=<2>\n",
      stderr: "",
    });
    const json = await ws.run(["stack", "output", "--json", "--non-interactive", "--stack", "dev"]);
    expect(json.stdout).toBe('{\n  "dbPassword": "[secret]",\n  "replicas": 2,\n  "tags": {\n    "team": "web"\n  },\n  "url": "https://logs.example.com/?a=1&b=<2>"\n}\n');
    expect(JSON.parse((await ws.run(["stack", "output", "-j", "--show-secrets"])).stdout).dbPassword).toBe("hunter2");
    expect(await ws.run(["stack", "output", "url"])).toEqual({ code: 0, stdout: "https://logs.example.com/?a=1&b=<2>\n", stderr: "" });
    expect((await ws.run(["stack", "output", "dbPassword"])).stdout).toBe("[secret]\n");
    expect((await ws.run(["stack", "output", "dbPassword", "--show-secrets"])).stdout).toBe("hunter2\n");
    expect((await ws.run(["stack", "output", "tags"])).stdout).toBe('{"team":"web"}\n');
    expect((await ws.run(["stack", "output", "tags", "--json"])).stdout).toBe('{\n  "team": "web"\n}\n');
    // Reading a secret output needs the secrets manager.
    expect(await ws.run(["stack", "output", "url"], { env: { PULUMI_CONFIG_PASSPHRASE: undefined } })).toEqual({ code: 255, stdout: "", stderr: PASSPHRASE_MISSING });
  });

  it("fails for a property the stack does not have, a missing stack and a malformed fixture", async () => {
    await ws.createStack();
    withOutputs();
    await ws.run(["up", "--yes"]);
    expect(await ws.run(["stack", "output", "bucketName"])).toEqual({ code: 255, stdout: "", stderr: "error: current stack does not have output property 'bucketName'\n" });
    expect((await ws.run(["stack", "output", "url", "tags"])).stderr).toBe("error: accepts at most 1 arg(s), received 2\n");
    expect((await ws.run(["stack", "output", "--stack", "qa"])).stderr).toBe("error: no stack named 'qa' found\n");
    ws.writeFixture({ outputs: ["url"] });
    expect((await ws.run(["up", "--yes"])).stderr).toBe(`error: pulumi stand-in: fixture ${join(ws.project, "pulumi-standin.json")}: "outputs" must be an object of stack outputs\n`);
  });
});

describe("destroy", () => {
  const POLICY = urn("aws:s3/bucketPolicy:BucketPolicy", "logs-policy");
  const DELETED =
    "Destroying (dev):\n\n" +
    " -  aws:s3:BucketPolicy logs-policy deleted\n" +
    " -  aws:iam:Role app-role deleted\n" +
    " -  aws:s3:Bucket logs deleted\n" +
    " -  pulumi:pulumi:Stack web-infra-dev deleted\n\n" +
    "Resources:\n    - 4 deleted\n\nDuration: 1s\n\n";
  const KEPT =
    "The resources in the stack have been deleted, but the history and configuration associated with the stack are still maintained. \n" +
    "If you want to remove the stack completely, run `pulumi stack rm dev`.\n";

  beforeEach(async () => {
    await ws.createStack();
    ws.useFixture("creates");
    expect((await ws.run(["up", "--yes"])).code).toBe(0);
    writeFileSync(configFile("dev"), STACK_CONFIG);
  });

  it("refuses to run non-interactively without --yes, --skip-preview or --preview-only", async () => {
    expect(await ws.run(["destroy", "--non-interactive"])).toEqual({ code: 255, stdout: "", stderr: NO_YES });
    expect(ws.stackResources("dev")).toHaveLength(5);
    expect((await ws.run(["destroy", "--target", LOGS, "--yes"])).stderr).toBe("error: a targeted destroy (--target) is not emulated by this stand-in\n");
  });

  it("deletes every resource of the checkpoint, dependents first and the root stack last", async () => {
    // The program is not run: a fixture that has nothing to say about these resources changes nothing.
    ws.writeFixture({ resources: [] });
    expect(await ws.run(["destroy", "--yes", "--non-interactive"])).toEqual({ code: 0, stdout: DELETED + KEPT, stderr: "" });
    expect(ws.stackResources("dev")).toEqual([]);
    expect(existsSync(configFile("dev"))).toBe(true);
    expect((await ws.run(["stack", "output"])).stdout).toBe("Current stack outputs (0):\n    No output values currently in this stack\n");
    // Nothing left: the next destroy succeeds with an empty summary.
    expect(await ws.run(["down", "-f"])).toEqual({ code: 0, stdout: "Destroying (dev):\n\nResources:\n\nDuration: 1s\n\n" + KEPT, stderr: "" });
  });

  it("--preview-only --json prints the preview digest `preview --json` prints, and changes nothing", async () => {
    const res = await ws.run(["destroy", "--non-interactive", "--preview-only", "--stack", "dev", "--json"]);
    expect(res).toMatchObject({ code: 0, stderr: "" });
    expect(res.stdout.startsWith('{\n    "config": {\n        "aws:region": "eu-west-1"')).toBe(true);
    const digest = JSON.parse(res.stdout) as Digest;
    expect(opsOf(digest)).toEqual(["delete logs-policy", "delete app-role", "delete logs", "delete web-infra-dev"]);
    expect(digest.changeSummary).toEqual({ delete: 4 });
    const provider = expect.stringMatching(/^urn:pulumi:dev::web-infra::pulumi:providers:aws::default_6_0_0::[0-9a-f-]{36}$/);
    expect(stepOf(digest, "delete", LOGS)).toEqual({
      op: "delete",
      urn: LOGS,
      provider,
      oldState: { urn: LOGS, custom: true, id: expect.any(String), type: "aws:s3/bucket:Bucket", inputs: { acl: "private", forceDestroy: false }, outputs: expect.objectContaining({ acl: "private" }), parent: ROOT, provider },
      detailedDiff: null,
    });
    expect(stepOf(digest, "delete", ROOT)).toEqual({ op: "delete", urn: ROOT, oldState: { urn: ROOT, custom: false, type: "pulumi:pulumi:Stack" }, detailedDiff: null });
    expect(digest.steps?.some((s) => s.urn.includes("pulumi:providers"))).toBe(false);
    expect(ws.stackResources("dev")).toHaveLength(5);
    expect(ws.stackResources("dev")).toContain(POLICY);
  });

  it("--preview-only shows the rows and what it would delete", async () => {
    const res = await ws.run(["destroy", "--preview-only"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      "Previewing destroy (dev):\n\n" +
        " -  aws:s3:BucketPolicy logs-policy delete\n -  aws:iam:Role app-role delete\n -  aws:s3:Bucket logs delete\n -  pulumi:pulumi:Stack web-infra-dev delete\n\n" +
        "Resources:\n    - 4 to delete\n\n",
    );
    // --remove after a preview: the CLI's backend refuses a stack that still has resources.
    expect((await ws.run(["destroy", "--preview-only", "--remove"])).stderr).toBe("error: refusing to remove stack because it still contains resources\n");
    expect(existsSync(ws.stackFile("dev"))).toBe(true);
  });

  it("--json streams engine events; --remove then removes the stack and its config file", async () => {
    const res = await ws.run(["destroy", "--non-interactive", "--yes", "--skip-preview", "--remove", "--stack", "dev", "--json"]);
    expect(res).toMatchObject({ code: 0, stderr: "" });
    const events = res.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, any>);
    expect(events.find((e) => e.summaryEvent)!.summaryEvent).toMatchObject({ resourceChanges: { delete: 4 }, isPreview: false });
    expect(events.filter((e) => e.resourcePreEvent).map((e) => e.resourcePreEvent.metadata.op)).toEqual(["delete", "delete", "delete", "delete"]);
    expect(existsSync(ws.stackFile("dev"))).toBe(false);
    expect(existsSync(configFile("dev"))).toBe(false);
    expect((await ws.run(["stack", "select", "dev"])).stderr).toBe("error: no stack named 'dev' found\n");
  });

  it("--remove without --json says the history and configuration went too", async () => {
    expect(await ws.run(["destroy", "-y", "--remove"])).toEqual({ code: 0, stdout: DELETED + "The resources in the stack have been deleted, and the history and configuration removed.\n", stderr: "" });
    expect(existsSync(ws.stackFile("dev"))).toBe(false);
  });

  it("fails like preview and up on a locked stack or a missing one", async () => {
    ws.useFixture("locked");
    expect((await ws.run(["destroy", "--yes"])).stderr).toMatch(/^error: the stack is currently locked by 1 lock\(s\)/);
    expect(ws.stackResources("dev")).toHaveLength(5);
    expect(await ws.run(["destroy", "--yes", "--stack", "qa"])).toEqual({ code: 255, stdout: "", stderr: "error: no stack named 'qa' found\n" });
  });
});

describe("stack rm", () => {
  beforeEach(async () => {
    await ws.createStack();
    writeFileSync(configFile("dev"), STACK_CONFIG);
  });

  it("refuses a stack that still has resources, and needs --yes", async () => {
    ws.useFixture("creates");
    await ws.run(["up", "--yes"]);
    expect(await ws.run(["stack", "rm", "dev"])).toEqual({ code: 255, stdout: "", stderr: "error: non-interactive mode requires --yes flag\n" });
    expect(await ws.run(["stack", "rm", "--yes", "dev"])).toEqual({
      code: 255,
      stdout: "",
      stderr:
        "error: 'dev' still has resources; removal rejected. Possible actions:\n" +
        "- Make sure that 'dev' is the stack that you want to destroy\n" +
        "- Run `pulumi destroy` to delete the resources, then run `pulumi stack rm`\n" +
        "- Run `pulumi stack rm --force` to override this error\n",
    });
    expect(existsSync(ws.stackFile("dev"))).toBe(true);
    // -f is --force here (--skip-preview for up and destroy).
    expect(await ws.run(["stack", "rm", "-yf", "--stack", "dev"])).toEqual({ code: 0, stdout: "Stack 'dev' has been removed!\n", stderr: "" });
    expect(existsSync(ws.stackFile("dev"))).toBe(false);
  });

  it("removes an emptied stack and its config file, and forgets the selected stack", async () => {
    ws.useFixture("creates");
    await ws.run(["up", "--yes"]);
    await ws.run(["destroy", "--yes"]);
    expect(await ws.run(["stack", "rm", "--yes"])).toEqual({ code: 0, stdout: "Stack 'dev' has been removed!\n", stderr: "" });
    expect(existsSync(ws.stackFile("dev"))).toBe(false);
    expect(existsSync(configFile("dev"))).toBe(false);
    expect((await ws.run(["preview"])).stderr).toBe("error: no stack selected; please use `pulumi stack select` or `pulumi stack init` to choose one\n");
  });

  it("--preserve-config keeps the config file; a missing stack fails", async () => {
    expect(await ws.run(["stack", "rm", "dev", "--yes", "--preserve-config"])).toEqual({ code: 0, stdout: "Stack 'dev' has been removed!\n", stderr: "" });
    expect(readFileSync(configFile("dev"), "utf8")).toBe(STACK_CONFIG);
    expect(await ws.run(["stack", "rm", "dev", "--yes"])).toEqual({ code: 255, stdout: "", stderr: "error: no stack named 'dev' found\n" });
  });
});
