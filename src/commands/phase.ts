/**
 * The rollout phase as commands meet it (src/approval/phase.ts): in `observe`, a command that
 * would apply answers what would happen and that the repository is read-only, and runs nothing.
 */
import type { GateResult } from "../approval/gate.js";
import { repoPhase } from "../connectors/store/phases.js";
import { renderGateChecklist } from "../render/gate.js";
import { code, shortSha } from "../render/markdown.js";
import { shortPlanHash } from "../render/plan.js";
import { audit, reply, type CommandContext } from "./context.js";

const READ_ONLY = (scope: string) =>
  `this repository is in \`observe\` mode (set for ${code(scope)}): nothing is applied and no deploy credentials are fetched; previews, \`/agent status\` and diagnostics work as usual. An operator moves it to \`suggest\` with \`npm run agent -- phase set\`.`;

/** In `observe`: says so for a command that would apply (`what`), audits it, and returns true (the caller stops). */
export async function refusedInObserve(ctx: CommandContext, what: string, detail: Record<string, unknown> = {}): Promise<boolean> {
  const p = await repoPhase(ctx.deps.db, ctx.repoFullName, ctx.deps.config.defaultPhase);
  if (p.phase !== "observe") return false;
  await audit(ctx, "deploy.observed", { command: what, scope: p.scope, ...detail });
  await reply(ctx, `\`${what}\` was not run: ${READ_ONLY(p.scope)}`);
  return true;
}

/** `/agent deploy` in `observe`: what the gate says now and what the deploy would do — nothing runs. */
export async function observedDeploy(ctx: CommandContext, stack: string, gate: GateResult, headSha: string, mode: string): Promise<boolean> {
  const p = await repoPhase(ctx.deps.db, ctx.repoFullName, ctx.deps.config.defaultPhase);
  if (p.phase !== "observe") return false;
  await audit(ctx, "deploy.observed", { command: "deploy", stack, scope: p.scope, head_sha: headSha, plan_hash: gate.planHash, allowed: gate.allowed, requirements: gate.requirements.map((r) => ({ id: r.id, met: r.met })) });
  const would = gate.allowed && gate.planHash
    ? `In \`suggest\` this would now apply plan ${code(shortPlanHash(gate.planHash) ?? "")} of ${code(stack)} at ${code(shortSha(headSha))}${mode === "merge-then-deploy" ? " after merging the pull request" : " and then merge the pull request"}.`
    : `In \`suggest\` the gate would not let it through yet:\n\n${renderGateChecklist(stack, gate, headSha)}`;
  await reply(ctx, `nothing was deployed: ${READ_ONLY(p.scope)}\n\n${would}`);
  return true;
}
