import { describe, expect, it } from "vitest";
import { egressRulesFor } from "../../src/approval/egress.js";
import { loadServerConfig, ServerConfigError } from "../../src/config/server-config.js";

describe("egress allowlist: server configuration and per-stack rules", () => {
  const allowlist = JSON.stringify({
    "octo/infra:prod": ["api.pulumi.com:443", "*.amazonaws.com"],
    "*:prod": ["sts.amazonaws.com"],
    "octo/infra:*": ["packages.example.com"],
  });

  it("parses the JSON map and merges every matching entry, without duplicates", () => {
    const c = loadServerConfig({ SANDBOX_EGRESS_ALLOWLIST: allowlist, SANDBOX_EGRESS_NETWORK: "agent-egress" });
    const rules = egressRulesFor(c.sandbox.egress.allowlist, "Octo/Infra", "prod");
    expect(rules).toEqual([
      { host: "api.pulumi.com", port: 443 },
      { host: "*.amazonaws.com", port: 443 },
      { host: "sts.amazonaws.com", port: 443 },
      { host: "packages.example.com", port: 443 },
    ]);
    expect(egressRulesFor(c.sandbox.egress.allowlist, "octo/infra", "dev")).toEqual([{ host: "packages.example.com", port: 443 }]);
    expect(egressRulesFor(c.sandbox.egress.allowlist, "other/repo", "dev")).toEqual([]);
  });

  it("no allowlist means no egress for anyone", () => {
    const c = loadServerConfig({});
    expect(c.sandbox.egress.allowlist).toEqual([]);
    expect(egressRulesFor(c.sandbox.egress.allowlist, "octo/infra", "prod")).toEqual([]);
  });

  it("rejects bad JSON, bad keys, bad rules, and an allowlist without its internal network", () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ SANDBOX_EGRESS_ALLOWLIST: "{not json" }, /SANDBOX_EGRESS_ALLOWLIST: not JSON/],
      [{ SANDBOX_EGRESS_ALLOWLIST: '{"prod": ["a.example.com"]}', SANDBOX_EGRESS_NETWORK: "n" }, /owner\/repo:stack/],
      [{ SANDBOX_EGRESS_ALLOWLIST: '{"o/r:prod": ["https://a.example.com/x"]}', SANDBOX_EGRESS_NETWORK: "n" }, /SANDBOX_EGRESS_ALLOWLIST/],
      [{ SANDBOX_EGRESS_ALLOWLIST: '{"o/r:prod": ["*"]}', SANDBOX_EGRESS_NETWORK: "n" }, /SANDBOX_EGRESS_ALLOWLIST/],
      [{ SANDBOX_EGRESS_ALLOWLIST: '{"o/r:prod": ["a.example.com"]}' }, /SANDBOX_EGRESS_NETWORK: required/],
    ];
    for (const [env, message] of bad) {
      expect(() => loadServerConfig(env), JSON.stringify(env)).toThrow(ServerConfigError);
      expect(() => loadServerConfig(env)).toThrow(message);
    }
  });
});
