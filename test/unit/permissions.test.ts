import { describe, it, expect } from "vitest";
import {
  REPO_PERMISSIONS,
  decidePermission,
  hasAtLeast,
  isBotActor,
  permissionFrom,
  type RepoPermission,
} from "../../src/approval/permissions.js";
import { decideImage } from "../../src/approval/images.js";

describe("permissionFrom", () => {
  it("prefers role_name over the folded permission field (maintain is reported as write)", () => {
    expect(permissionFrom({ permission: "write", role_name: "maintain" })).toBe("maintain");
  });

  it("prefers role_name over the folded permission field (triage is reported as read)", () => {
    expect(permissionFrom({ permission: "read", role_name: "triage" })).toBe("triage");
  });

  it("uses role_name even when it is lower than permission", () => {
    // role_name is the more precise field; it is trusted as-is.
    expect(permissionFrom({ permission: "admin", role_name: "write" })).toBe("write");
  });

  it("falls back to permission when role_name is a custom role", () => {
    expect(permissionFrom({ permission: "write", role_name: "infra-deployer" })).toBe("write");
    expect(permissionFrom({ permission: "read", role_name: "security-reviewer" })).toBe("read");
  });

  it("falls back to permission when role_name is missing, null or empty", () => {
    expect(permissionFrom({ permission: "admin" })).toBe("admin");
    expect(permissionFrom({ permission: "read", role_name: null })).toBe("read");
    expect(permissionFrom({ permission: "write", role_name: "" })).toBe("write");
  });

  it("uses role_name alone when permission is missing", () => {
    expect(permissionFrom({ role_name: "maintain" })).toBe("maintain");
    expect(permissionFrom({ role_name: "admin", permission: null })).toBe("admin");
  });

  it("returns none when neither field is a known permission", () => {
    expect(permissionFrom({})).toBe("none");
    expect(permissionFrom({ permission: null, role_name: null })).toBe("none");
    expect(permissionFrom({ permission: "push", role_name: "custom" })).toBe("none");
    expect(permissionFrom({ permission: "superuser" })).toBe("none");
  });

  it("is case-sensitive: API values are lower case, anything else is unknown", () => {
    expect(permissionFrom({ permission: "ADMIN", role_name: "Admin" })).toBe("none");
  });

  it("accepts every known permission through either field", () => {
    for (const p of REPO_PERMISSIONS) {
      expect(permissionFrom({ permission: p })).toBe(p);
      expect(permissionFrom({ role_name: p, permission: "none" })).toBe(p);
    }
  });
});

describe("hasAtLeast", () => {
  const order: RepoPermission[] = ["none", "read", "triage", "write", "maintain", "admin"];

  it("orders permissions none < read < triage < write < maintain < admin", () => {
    expect([...REPO_PERMISSIONS]).toEqual(order);
    for (let i = 0; i < order.length; i++) {
      for (let j = 0; j < order.length; j++) {
        expect(hasAtLeast(order[i]!, order[j]!), `${order[i]} >= ${order[j]}`).toBe(i >= j);
      }
    }
  });

  it("treats maintain as above write and triage as below write", () => {
    expect(hasAtLeast("maintain", "write")).toBe(true);
    expect(hasAtLeast("triage", "write")).toBe(false);
    expect(hasAtLeast("triage", "read")).toBe(true);
    expect(hasAtLeast("write", "maintain")).toBe(false);
  });
});

describe("decidePermission", () => {
  it("allows the required level and above, refusing below it with both levels", () => {
    const order: RepoPermission[] = ["none", "read", "triage", "write", "maintain", "admin"];
    for (const required of order) {
      for (const actual of order) {
        const expected = order.indexOf(actual) >= order.indexOf(required) ? { allowed: true } : { allowed: false, required, actual };
        expect(decidePermission(required, actual), `${actual} for ${required}`).toEqual(expected);
      }
    }
  });
});

describe("isBotActor", () => {
  it("is true for type Bot", () => {
    expect(isBotActor({ type: "Bot", login: "my-app" })).toBe(true);
  });

  it("is true for a login ending in [bot], whatever the type", () => {
    expect(isBotActor({ type: "User", login: "dependabot[bot]" })).toBe(true);
    expect(isBotActor({ login: "pr-infra-agent[bot]" })).toBe(true);
  });

  it("is false for ordinary users, including logins that merely contain 'bot'", () => {
    expect(isBotActor({ type: "User", login: "alice" })).toBe(false);
    expect(isBotActor({ type: "User", login: "robotics-team" })).toBe(false);
    expect(isBotActor({ type: "User", login: "bot" })).toBe(false);
    expect(isBotActor({ type: "User", login: "[bot]-fan" })).toBe(false);
    expect(isBotActor({ type: "Organization", login: "acme" })).toBe(false);
  });

  it("is false when type and login are missing or null on a present user", () => {
    expect(isBotActor({})).toBe(false);
    expect(isBotActor({ type: null, login: null })).toBe(false);
  });

  it("treats a missing user (null/undefined) as a bot, so it is never a command", () => {
    expect(isBotActor(null)).toBe(true);
    expect(isBotActor(undefined)).toBe(true);
  });
});

describe("decideImage", () => {
  const server = { defaultImage: "agent-sandbox:1", allowedImages: ["ghcr.io/acme/tf:1.9", "ghcr.io/acme/pulumi:3"] };

  it("uses the default image when none is requested", () => {
    expect(decideImage(undefined, server)).toEqual({ ok: true, image: "agent-sandbox:1" });
    expect(decideImage("", server)).toEqual({ ok: true, image: "agent-sandbox:1" });
  });

  it("accepts the default image when it is requested explicitly, even with an empty allowlist", () => {
    expect(decideImage("agent-sandbox:1", { defaultImage: "agent-sandbox:1", allowedImages: [] })).toEqual({
      ok: true,
      image: "agent-sandbox:1",
    });
  });

  it("accepts an allowlisted image and returns that image, not the default", () => {
    expect(decideImage("ghcr.io/acme/pulumi:3", server)).toEqual({ ok: true, image: "ghcr.io/acme/pulumi:3" });
  });

  it("refuses an image that is not allowed, naming the requested and every allowed image", () => {
    const d = decideImage("evil.example.com/miner:latest", server);
    expect(d.ok).toBe(false);
    if (d.ok) return;
    expect(d.message).toContain("`evil.example.com/miner:latest`");
    expect(d.message).toContain("`agent-sandbox:1`");
    expect(d.message).toContain("`ghcr.io/acme/tf:1.9`");
    expect(d.message).toContain("`ghcr.io/acme/pulumi:3`");
    expect(d.message).toContain("SANDBOX_ALLOWED_IMAGES");
    expect(d).not.toHaveProperty("image");
  });

  it("requires an exact match (no prefix or tag wildcarding)", () => {
    expect(decideImage("ghcr.io/acme/tf:1.10", server).ok).toBe(false);
    expect(decideImage("ghcr.io/acme/tf", server).ok).toBe(false);
    expect(decideImage("agent-sandbox:1 ", server).ok).toBe(false);
  });

  it("names only the default when the allowlist is empty", () => {
    const d = decideImage("other:1", { defaultImage: "agent-sandbox:1", allowedImages: [] });
    expect(d).toEqual({ ok: false, message: expect.stringContaining("(allowed: `agent-sandbox:1`)") });
  });
});
