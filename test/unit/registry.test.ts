import { describe, it, expect } from "vitest";
import { parseComment, type ParsedCommand } from "../../src/commands/grammar.js";
import {
  buttonCommand,
  commandOfButton,
  decideCommandPermission,
  requiredPermission,
  resolveCommand,
  type Command,
  type RepoStacks,
} from "../../src/commands/registry.js";
import { renderHelp } from "../../src/commands/help.js";
import { COMMANDS } from "../../src/commands/table.js";
import { PREVIEW_ACTIONS } from "../../src/jobs/preview-task.js";

const REPO: RepoStacks = { stacks: ["dev", "staging", "prod"] };
const REPO_DEFAULT: RepoStacks = { stacks: ["dev", "staging", "prod"], defaultStack: "dev" };
const NO_STACKS: RepoStacks = { stacks: [] };

function parseOne(body: string): ParsedCommand {
  const result = parseComment(body);
  expect(result.errors).toEqual([]);
  expect(result.commands).toHaveLength(1);
  return result.commands[0]!;
}

function ok(body: string, repo: RepoStacks = REPO): Command {
  const r = resolveCommand(parseOne(body), repo);
  if (!r.ok) throw new Error(`expected ok, got: ${r.message}`);
  return r.command;
}

function err(body: string, repo: RepoStacks = REPO): string {
  const r = resolveCommand(parseOne(body), repo);
  if (r.ok) throw new Error(`expected error, got: ${JSON.stringify(r.command)}`);
  return r.message;
}

/** Every piece of text between backticks in a message. */
function codeSpans(message: string): string[] {
  return [...message.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);
}

describe("COMMANDS", () => {
  it("lists every command once, with usage, description and where it is allowed", () => {
    const names = COMMANDS.map((c) => c.name);
    expect(names).toEqual(["preview", "ok-to-test", "deploy", "destroy", "unlock", "rollback", "drift", "cancel", "status", "help", "diagnose", "approve", "deny"]);
    for (const c of COMMANDS) {
      expect(c.usage.startsWith(c.name === "approve" || c.name === "deny" ? `/${c.name}` : `/agent ${c.name}`)).toBe(true);
      expect(c.description.length).toBeGreaterThan(10);
      expect(c.description).not.toContain("\n");
      expect(["pull_request", "issue", "both"]).toContain(c.where);
    }
  });
});

describe("requiredPermission (the command table's levels)", () => {
  it("requires read for help and write for everything else", () => {
    expect(requiredPermission("help")).toBe("read");
    expect(requiredPermission("preview")).toBe("write");
    expect(requiredPermission("deploy")).toBe("write");
    expect(requiredPermission("approve")).toBe("write");
    expect(requiredPermission("some-future-command")).toBe("write");
    // Vouching for untrusted code is a maintainer's call (Prow's /ok-to-test).
    expect(requiredPermission("ok-to-test")).toBe("maintain");
  });
});

describe("decideCommandPermission (by command name)", () => {
  it("allows help for read and above", () => {
    for (const p of ["read", "triage", "write", "maintain", "admin"] as const) {
      expect(decideCommandPermission("help", p)).toEqual({ allowed: true });
    }
  });

  it("refuses help for none, reporting read as required", () => {
    expect(decideCommandPermission("help", "none")).toEqual({ allowed: false, required: "read", actual: "none" });
  });

  it("refuses preview for read, triage and none, reporting write as required and the actual level", () => {
    for (const p of ["none", "read", "triage"] as const) {
      expect(decideCommandPermission("preview", p)).toEqual({ allowed: false, required: "write", actual: p });
    }
  });

  it("allows preview for write, maintain and admin", () => {
    for (const p of ["write", "maintain", "admin"] as const) {
      expect(decideCommandPermission("preview", p)).toEqual({ allowed: true });
    }
  });

  it("treats unknown commands like preview (write required)", () => {
    expect(decideCommandPermission("deploy", "triage")).toEqual({ allowed: false, required: "write", actual: "triage" });
    expect(decideCommandPermission("deploy", "write")).toEqual({ allowed: true });
    expect(decideCommandPermission("frobnicate", "triage")).toEqual({ allowed: false, required: "write", actual: "triage" });
  });
});

describe("check-run buttons", () => {
  it("the preview check run's buttons are the table's, by identifier and label", () => {
    for (const action of PREVIEW_ACTIONS) {
      expect(commandOfButton(action.identifier)?.button?.label).toBe(action.label);
    }
    expect(COMMANDS.filter((c) => c.button).map((c) => c.button!.identifier)).toEqual(PREVIEW_ACTIONS.map((a) => a.identifier));
    expect(commandOfButton("frobnicate")).toBeUndefined();
    expect(commandOfButton("constructor")).toBeUndefined();
  });

  it("a click stands for the command as if typed, with the clicked check run's stack where it takes one", () => {
    const deploy = buttonCommand(commandOfButton("deploy")!, "prod");
    expect(deploy).toMatchObject({ kind: "agent", name: "deploy", args: ["prod"], flags: {}, raw: "/agent deploy prod" });
    expect(resolveCommand(deploy, REPO)).toEqual({ ok: true, command: { name: "deploy", stacks: ["prod"] } });
    const approve = buttonCommand(commandOfButton("approve")!, "prod");
    expect(approve).toMatchObject({ kind: "approve", reason: "", raw: "/approve" });
    expect(resolveCommand(approve, REPO)).toEqual({ ok: true, command: { name: "approve", reason: "" } });
  });
});

describe("resolveCommand: ok-to-test", () => {
  it("is a preview of the default stack (or every stack) and takes no arguments", () => {
    expect(ok("/agent ok-to-test")).toEqual(ok("/agent preview"));
    expect(ok("/agent ok-to-test").name).toBe("preview");
  });
});

describe("resolveCommand: preview", () => {
  it("takes positional stacks", () => {
    expect(ok("/agent preview dev prod")).toEqual({ name: "preview", stacks: ["dev", "prod"] });
  });

  it("takes --stack in both forms, combined with positional stacks", () => {
    expect(ok("/agent preview --stack prod")).toEqual({ name: "preview", stacks: ["prod"] });
    expect(ok("/agent preview --stack=prod")).toEqual({ name: "preview", stacks: ["prod"] });
    expect(ok("/agent preview dev --stack staging")).toEqual({ name: "preview", stacks: ["dev", "staging"] });
  });

  it("collapses duplicate stacks, keeping first-seen order", () => {
    expect(ok("/agent preview prod dev prod --stack dev")).toEqual({ name: "preview", stacks: ["prod", "dev"] });
  });

  it("defaults to [defaultStack] when the repo declares one", () => {
    expect(ok("/agent preview", REPO_DEFAULT)).toEqual({ name: "preview", stacks: ["dev"] });
  });

  it("defaults to all declared stacks when there is no default stack", () => {
    expect(ok("/agent preview", REPO)).toEqual({ name: "preview", stacks: ["dev", "staging", "prod"] });
  });

  it("explicit stacks override the default", () => {
    expect(ok("/agent preview prod", REPO_DEFAULT)).toEqual({ name: "preview", stacks: ["prod"] });
  });

  it("errors when the repo declares no stacks", () => {
    expect(err("/agent preview", NO_STACKS)).toContain("declares no stacks");
    expect(err("/agent preview dev", NO_STACKS)).toContain("This repository declares no stacks.");
  });

  it("--all asks for the stacks the changes match (resolved by the command, not here), with or without a default stack", () => {
    expect(ok("/agent preview --all")).toEqual({ name: "preview", stacks: [], all: true });
    expect(ok("/agent preview --all", REPO_DEFAULT)).toEqual({ name: "preview", stacks: [], all: true });
  });

  it("--all takes no value and does not combine with named stacks", () => {
    expect(err("/agent preview --all=yes")).toContain("`--all` takes no value");
    expect(err("/agent preview dev --all")).toContain("not both");
    expect(err("/agent preview --all --stack dev")).toContain("not both");
    // Only preview takes it.
    expect(err("/agent ok-to-test --all")).toContain("takes no flags");
    expect(err("/agent unlock --all")).toContain("takes no flags");
  });

  it("rejects a bare --stack", () => {
    const message = err("/agent preview --stack");
    expect(message).toContain("`--stack` needs a value");
    expect(message).toContain("/agent preview [stack...]");
  });

  it("rejects a default stack that is not declared", () => {
    const message = err("/agent preview", { stacks: ["dev"], defaultStack: "prod" });
    expect(message).toContain("`default_stack` `prod` is not one of its declared stacks");
  });

  it("stack names are case-sensitive and suggest the declared spelling", () => {
    const message = err("/agent preview Prod");
    expect(message).toContain("Unknown stack `Prod`");
    expect(message).toContain("did you mean `prod`?");
  });
});

describe("resolveCommand: deploy", () => {
  it("takes a stack positionally or via --stack", () => {
    expect(ok("/agent deploy prod")).toEqual({ name: "deploy", stacks: ["prod"] });
    expect(ok("/agent deploy --stack prod")).toEqual({ name: "deploy", stacks: ["prod"] });
    expect(ok("/agent deploy --stack=staging")).toEqual({ name: "deploy", stacks: ["staging"] });
  });

  it("accepts the same stack given both ways", () => {
    expect(ok("/agent deploy prod --stack prod")).toEqual({ name: "deploy", stacks: ["prod"] });
  });

  it("uses the default stack when none is given", () => {
    expect(ok("/agent deploy", REPO_DEFAULT)).toEqual({ name: "deploy", stacks: ["dev"] });
  });

  it("requires a stack when there is no default: deploying every stack is never implied", () => {
    const message = err("/agent deploy", REPO);
    expect(message).toContain("needs a stack (or `--all`)");
    expect(message).toContain("`/agent deploy [stack...] [--stack <stack>] [--all] [--review]`");
    expect(message).toContain("Declared stacks: `dev`, `staging`, `prod`.");
  });

  it("several stacks make a deploy run (duplicates collapse, order as typed: the run orders them by depends_on)", () => {
    expect(ok("/agent deploy prod dev")).toEqual({ name: "deploy", stacks: ["prod", "dev"] });
    expect(ok("/agent deploy dev --stack prod dev")).toEqual({ name: "deploy", stacks: ["dev", "prod"] });
  });

  it("--all deploys every stack previewed on the head, and names no stack with it", () => {
    expect(ok("/agent deploy --all")).toEqual({ name: "deploy", stacks: [], all: true });
    expect(err("/agent deploy dev --all")).toContain("deploys every stack previewed on this pull request's head: name stacks or use `--all`, not both");
    expect(err("/agent deploy --all=1")).toContain("`--all` takes no value");
  });

  it("one unknown stack refuses the whole command", () => {
    expect(err("/agent deploy dev prd")).toContain("Unknown stack `prd`");
  });
});

describe("resolveCommand: unlock and rollback", () => {
  it("unlock without a stack is null (not the default stack)", () => {
    expect(ok("/agent unlock", REPO_DEFAULT)).toEqual({ name: "unlock", stack: null });
  });

  it("unlock with a stack validates it", () => {
    expect(ok("/agent unlock prod")).toEqual({ name: "unlock", stack: "prod" });
    expect(err("/agent unlock nope")).toContain("Unknown stack `nope`");
    expect(err("/agent unlock a b")).toContain("takes at most 1 argument (got 2)");
  });

  it("unlock takes no flags", () => {
    const message = err("/agent unlock --stack prod");
    expect(message).toContain("Unknown flag `--stack` for `/agent unlock`");
    expect(message).toContain("takes no flags");
  });

  it("rollback takes stacks, or the default", () => {
    expect(ok("/agent rollback prod")).toEqual({ name: "rollback", stacks: ["prod"] });
    expect(ok("/agent rollback", REPO_DEFAULT)).toEqual({ name: "rollback", stacks: ["dev"] });
    expect(ok("/agent rollback dev prod")).toEqual({ name: "rollback", stacks: ["dev", "prod"] });
    expect(err("/agent rollback", REPO)).toContain("needs a stack");
    expect(err("/agent rollback", REPO)).toContain("Usage: `/agent rollback [stack...]`");
    expect(err("/agent rollback ../prod")).toContain("Invalid stack name `../prod`");
  });

  it("rollback accepts neither --stack nor --all (every stack is named)", () => {
    expect(err("/agent rollback --stack prod")).toContain("Unknown flag `--stack` for `/agent rollback`");
    expect(err("/agent rollback --all")).toContain("Unknown flag `--all` for `/agent rollback`");
  });
});

describe("resolveCommand: argument-less commands", () => {
  it.each(["cancel", "status", "help"] as const)("%s resolves with no args", (name) => {
    expect(ok(`/agent ${name}`)).toEqual({ name });
    expect(ok(`/agent ${name.toUpperCase()}`)).toEqual({ name });
  });

  it.each(["cancel", "status", "help"] as const)("%s rejects args with its usage", (name) => {
    const message = err(`/agent ${name} prod`);
    expect(message).toContain(`\`/agent ${name}\` takes no arguments (got 1)`);
    expect(message).toContain(`Usage: \`/agent ${name}\``);
  });

  it("rejects flags on argument-less commands", () => {
    const message = err("/agent status --verbose");
    expect(message).toContain("Unknown flag `--verbose` for `/agent status`");
    expect(message).toContain("`/agent status` takes no flags");
  });
});

describe("resolveCommand: diagnose", () => {
  it("diagnoses the whole repository without a stack, or one declared stack", () => {
    expect(ok("/agent diagnose")).toEqual({ name: "diagnose", stack: null });
    expect(ok("/agent diagnose prod")).toEqual({ name: "diagnose", stack: "prod" });
  });

  it("rejects an undeclared stack, a second argument and flags", () => {
    expect(err("/agent diagnose prdo")).toContain("Unknown stack `prdo` — did you mean `prod`?");
    expect(err("/agent diagnose prod dev")).toContain("takes at most 1 argument (got 2)");
    expect(err("/agent diagnose --stack prod")).toContain("Unknown flag `--stack` for `/agent diagnose`");
  });
});

describe("resolveCommand: /approve and /deny", () => {
  it("passes the reason through", () => {
    expect(ok("/approve ship it")).toEqual({ name: "approve", reason: "ship it" });
    expect(ok("/deny not now")).toEqual({ name: "deny", reason: "not now" });
    expect(ok("/approve", NO_STACKS)).toEqual({ name: "approve", reason: "" });
  });
});

describe("resolveCommand: unknown commands", () => {
  it("names the bad command and lists valid commands", () => {
    const message = err("/agent frobnicate");
    expect(message).toContain("Unknown command `frobnicate`.");
    for (const name of ["preview", "deploy", "unlock", "rollback", "cancel", "status", "help", "diagnose"]) {
      expect(message).toContain(`\`${name}\``);
    }
    expect(message).not.toContain("did you mean");
  });

  it.each([
    ["previw", "preview"],
    ["preveiw", "preview"],
    ["deplyo", "deploy"],
    ["stats", "status"],
    ["hlep", "help"],
    ["unlok", "unlock"],
    ["rollbak", "rollback"],
    ["diagnos", "diagnose"],
  ])("suggests the closest command for %s", (typo, suggestion) => {
    expect(err(`/agent ${typo}`)).toContain(`did you mean \`${suggestion}\`?`);
  });

  it("does not suggest when the distance is more than 2", () => {
    expect(err("/agent prvw")).not.toContain("did you mean");
    expect(err("/agent xyz")).not.toContain("did you mean");
  });

  it("does not resolve Object.prototype names", () => {
    expect(err("/agent constructor")).toContain("Unknown command `constructor`");
    expect(err("/agent __proto__")).toContain("Unknown command `__proto__`");
    expect(err("/agent tostring")).toContain("Unknown command `tostring`");
  });

  it("does not accept a Kelvin-sign lookalike of unlock", () => {
    const message = err("/agent unloc\u212A");
    expect(message).toContain("Unknown command `unloc\u212A`");
  });

  it("points /agent approve and /agent deny to the right syntax", () => {
    expect(err("/agent approve")).toContain("write `/approve [reason]`");
    expect(err("/agent deny")).toContain("write `/deny [reason]`");
  });

  it("sanitises and truncates the echoed command name", () => {
    const evil = "`@admin<img/src=x>**bold**" + "x".repeat(100);
    const message = err(`/agent ${evil}`);
    const spans = codeSpans(message);
    expect(spans[0]).toBe("@admin<img/src=x>**bold**xxxxxxxxxxxxxxx…");
    expect(spans[0]!.replace("…", "")).toHaveLength(40);
    // the only user text outside backticks would be an unbalanced backtick: none remain
    expect(message.split("`").length % 2).toBe(1);
    expect(message).not.toContain("x".repeat(41));
  });

  it("strips control and bidi characters from the echo", () => {
    const message = err("/agent de\u202eploy\u0007");
    expect(message).toContain("Unknown command `deploy`");
    expect(message).not.toMatch(/[\u0000-\u001f\u202e]/);
  });
});

describe("resolveCommand: stack validation and injection-shaped input", () => {
  it("rejects `/agent preview dev; rm -rf /` on the stack `dev;` without splitting", () => {
    const message = err("/agent preview dev; rm -rf /");
    expect(message).toContain("`dev;`");
    expect(message).toContain("Invalid stack name");
    expect(message).toContain("Declared stacks: `dev`, `staging`, `prod`.");
  });

  it("rejects `/agent deploy dev; rm -rf /` on its first invalid stack name, never deploying dev", () => {
    const r = resolveCommand(parseOne("/agent deploy dev; rm -rf /"), REPO);
    expect(r.ok).toBe(false);
    expect(r.ok ? "" : r.message).toContain("Invalid stack name `dev;`");
  });

  it("rejects `/agent deploy dev;` on the stack `dev;`", () => {
    expect(err("/agent deploy dev;")).toContain("Invalid stack name `dev;`");
  });

  it("rejects $(curl evil)", () => {
    const message = err("/agent preview $(curl evil)");
    expect(message).toContain("Invalid stack name `$(curl`");
  });

  it.each([
    ["../x", "`../x`"],
    ["/etc/passwd", "`/etc/passwd`"],
    ["-rf", "`-rf`"],
    [".hidden", "`.hidden`"],
    ["a|b", "`a|b`"],
    ["dev&&id", "`dev&&id`"],
    ["${HOME}", "`${HOME}`"],
    ["dév", "`dév`"],
    ["\u0440rod", "`\u0440rod`"], // Cyrillic р
    ["ｄｅｖ", "`ｄｅｖ`"], // full-width
    ["dev\u200b", "`dev`"], // zero-width space: stripped in the echo, still rejected
    ["a".repeat(64), "`" + "a".repeat(40) + "…`"],
  ])("rejects invalid stack name %j", (stack, echoed) => {
    const message = err(`/agent preview ${stack}`, { stacks: ["dev", "prod", "a".repeat(63)] });
    expect(message).toContain(`Invalid stack name ${echoed}`);
  });

  it("rejects backticks in a stack name and strips them from the echo", () => {
    const message = err("/agent preview `id`");
    expect(message).toContain("Invalid stack name `id`");
  });

  it("rejects a well-formed but undeclared stack as unknown", () => {
    const message = err("/agent preview qa");
    expect(message).toBe("Unknown stack `qa`. Declared stacks: `dev`, `staging`, `prod`.");
  });

  it("rejects an invalid --stack value", () => {
    expect(err("/agent deploy --stack=$(id)")).toContain("Invalid stack name `$(id)`");
  });

  it("accepts a stack name at the 63-character limit when declared", () => {
    const long = "A" + "b.c_d-".repeat(10) + "zz";
    expect(long).toHaveLength(63);
    expect(ok(`/agent deploy ${long}`, { stacks: [long] })).toEqual({ name: "deploy", stacks: [long] });
  });

  it("accepts dots, dashes and underscores in declared names", () => {
    const repo = { stacks: ["eu-west-1.prod", "team_a"] };
    expect(ok("/agent preview eu-west-1.prod team_a", repo)).toEqual({
      name: "preview",
      stacks: ["eu-west-1.prod", "team_a"],
    });
  });

  it("unknown stack with a close match suggests it", () => {
    expect(err("/agent deploy prd")).toBe(
      "Unknown stack `prd` — did you mean `prod`? Declared stacks: `dev`, `staging`, `prod`.",
    );
  });

  it("limits the declared-stack list in messages", () => {
    const stacks = Array.from({ length: 30 }, (_, i) => `s${i}`);
    const message = err("/agent preview nope", { stacks });
    expect(message).toContain("`s19` and 10 more.");
    expect(message).not.toContain("`s20`");
  });
});

describe("resolveCommand: flags", () => {
  it("rejects unknown flags on preview naming the valid ones", () => {
    const message = err("/agent preview --force");
    expect(message).toContain("Unknown flag `--force` for `/agent preview`");
    expect(message).toContain("Valid flags: `--stack`, `--all`, `--review`.");
  });

  it("rejects unknown flags on deploy", () => {
    expect(err("/agent deploy prod --auto-approve")).toContain("Unknown flag `--auto-approve` for `/agent deploy`");
  });

  it("rejects Object.prototype-named flags", () => {
    expect(err("/agent deploy prod --constructor")).toContain("Unknown flag `--constructor`");
  });
});

describe("renderHelp", () => {
  it("lists every command with its usage and description", () => {
    const help = renderHelp(COMMANDS, ["dev", "prod"]);
    for (const c of COMMANDS) {
      expect(help).toContain(`\`${c.usage}\` — ${c.description}`);
    }
  });

  it("lists declared stacks and explains the lack of a default", () => {
    const help = renderHelp(COMMANDS, ["dev", "prod"]);
    expect(help).toContain("**Stacks:** `dev`, `prod`");
    expect(help).toContain("**Default stack:** none");
  });

  it("names the default stack", () => {
    const help = renderHelp(COMMANDS, ["dev", "prod"], "prod");
    expect(help).toContain("**Default stack:** `prod`");
    expect(help).not.toContain("**Default stack:** none");
  });

  it("flags a default stack that is not declared", () => {
    expect(renderHelp(COMMANDS, ["dev"], "prod")).toContain("is configured but not declared");
  });

  it("handles a repo with no stacks", () => {
    const help = renderHelp(COMMANDS, []);
    expect(help).toContain("declares no stacks");
    expect(help).not.toContain("Default stack");
  });

  it("sanitises stack names from config", () => {
    const help = renderHelp(COMMANDS, ["ok", "bad`name<b>"]);
    expect(help).toContain("`badname<b>`");
    expect(help.split("`").length % 2).toBe(1);
  });

  it("is deterministic and ends with a newline", () => {
    expect(renderHelp(COMMANDS, ["a"], "a")).toBe(renderHelp(COMMANDS, ["a"], "a"));
    expect(renderHelp(COMMANDS, ["a"]).endsWith("\n")).toBe(true);
  });
});

describe("end to end: parse then resolve a multi-command comment", () => {
  it("resolves each command independently", () => {
    const body = [
      "Let's try this:",
      "```",
      "/agent deploy prod",
      "```",
      "/agent preview dev staging",
      "/agent previw",
      "/approve LGTM",
      "> /deny",
    ].join("\n");
    const { commands, errors } = parseComment(body);
    expect(errors).toEqual([]);
    const resolved = commands.map((c) => resolveCommand(c, REPO));
    expect(resolved).toEqual([
      { ok: true, command: { name: "preview", stacks: ["dev", "staging"] } },
      { ok: false, message: expect.stringContaining("did you mean `preview`?") },
      { ok: true, command: { name: "approve", reason: "LGTM" } },
    ]);
  });
});
